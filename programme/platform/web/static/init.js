// Our only script of our own: GOV.UK Frontend's components (error summary focus,
// password show/hide, ...). Every page works without it.
import { initAll } from "./vendor/govuk-frontend/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();
