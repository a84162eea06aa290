"""The headers every page carries, the dashboard's and the node's own: a strict
Content-Security-Policy (everything from this server only — htmx and the stylesheet are
vendored under `static/` — no inline script or style, no frames, forms posting only here)."""

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
