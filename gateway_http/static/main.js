/* Orochi dashboard: live view of a workspace over the observer WebSocket, REST for the rest.
 *
 * The entry module. The token never goes into a URL the page requests: REST and media
 * carry an Authorization header (api.js, media.js) and the live socket opens with a
 * single-use ticket (feed.js). Writes need the admin token (composer.js); /api/whoami
 * tells. The other modules import each other's functions and only define things when
 * loaded; nothing runs until start() below.
 *
 *   state.js     state, localStorage keys        dom.js       DOM and formatting helpers
 *   api.js       REST client                     media.js     /media/ through blob: URLs
 *   signin.js    sign-in, workspaces             feed.js      live socket, resume by after_seq
 *   channels.js  channel list, read state        messages.js  message list and rendering
 *   composer.js  posting, uploads, read-only     agents.js    agents panel, offline toggle
 *   markdown.js  safe markdown of messages       actions.js   a message's actions toolbar
 *   layout.js    drawers on narrow screens       agentdetail.js  one agent's presence record
 *   panel.js     the side panel                  threads.js   a thread in the side panel
 *   reactions.js chips, picker, live updates     edits.js     edit and delete, live changes
 *   dms.js       the DM list                     search.js    search, jumps, permalinks
 *   notice.js    refusals shown as a notice      pwa.js       service worker, new builds
 *   health.js    health classes, pills, counts   agentops.js  kick, forget, purge (admin)
 *   upstream.js  following another hub (stable/dev dashboards): REST base, socket, banner
 *   push.js      the offer of web push notifications
 */
import { wireActions } from "./actions.js";
import { wireAgentDetail } from "./agentdetail.js";
import { wireAgents } from "./agents.js";
import { wireComposer } from "./composer.js";
import { wireLayout } from "./layout.js";
import { wireMessages } from "./messages.js";
import { wirePanel } from "./panel.js";
import { wirePush } from "./push.js";
import { registerWorker, watchBuild } from "./pwa.js";
import { wireReactions } from "./reactions.js";
import { wireSearch } from "./search.js";
import { start, wireSignin } from "./signin.js";
import { wireSkills } from "./skills.js";

wireSignin();
wireComposer();
wireMessages();
wireAgents();
wireActions();
wireAgentDetail();
wireLayout();
wirePanel();
wireReactions();
wireSearch();
wireSkills();
wirePush();
start();
registerWorker();
watchBuild();
