"""The web pages' base: sessions, CSRF, security headers, templates, the layout, and the
platform's own pages (sign-in, sign-out, own password, first-run set-up, home)."""
