// Our only script of our own: GOV.UK Frontend's components (error summary focus,
// password show/hide, ...). Every page works without it.
import { initAll } from "./vendor/govuk-frontend/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();

// A part of a page swapped in by htmx (a form answered with its problems, or
// saved): its components start too, so its error summary or success banner
// takes the focus as it would on a whole page.
document.body.addEventListener("htmx:load", (event) => {
  if (event.detail.elt !== document.body) initAll({ scope: event.detail.elt });
});

// htmx could not use the answer (the form's token expired, the network failed):
// send the form again the plain way, so the person sees the page the service
// answers without JavaScript. Live checks (sent as the person types) are left alone.
for (const failure of ["htmx:responseError", "htmx:sendError"]) {
  document.body.addEventListener(failure, (event) => {
    const form = event.detail.elt;
    if (form instanceof HTMLFormElement && !form.hasAttribute("hx-trigger")) form.submit();
  });
}
