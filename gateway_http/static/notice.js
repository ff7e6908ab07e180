/* A small non-blocking notice for refused actions (403, 404, 409): the toast, worded by
 * the status. */
import { toast } from "./dom.js";

const WHY = { 403: "not allowed", 404: "not found", 409: "no longer possible" };

export function notice(text, status) {
  const why = WHY[status];
  toast(why ? `${text} (${why})` : text, 5000);
  const box = document.getElementById("toast");
  box.classList.toggle("toast-error", !!status);
}
