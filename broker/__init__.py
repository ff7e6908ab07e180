"""The bus: an XSUB/XPUB proxy that publishers and subscribers connect to."""
