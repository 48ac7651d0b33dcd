// The banner's and dialog's stylesheet. It is adopted as a constructed
// stylesheet (or, where that is missing, put in a <style> element carrying
// the page's nonce), never written into style attributes, so a host page
// whose CSP forbids inline styles still shows it. Every selector starts with
// .stw so the host page's own rules and these keep apart. "$A" is the
// product's accent colour, checked by the policy bundle to keep 4.5:1
// against white (WCAG 2.1 AA); the other colours keep at least that against
// their backgrounds.
export const css = `
.stw,.stw *{box-sizing:border-box}
.stw{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#111827;background:#fff;text-align:left;letter-spacing:normal;text-transform:none}
.stw-banner{position:fixed;left:0;right:0;bottom:0;z-index:2147483000;border-top:1px solid #9ca3af;box-shadow:0 -4px 18px rgba(0,0,0,.15);max-height:85vh;overflow:auto}
.stw-in{max-width:64rem;margin:0 auto;padding:1rem 1.25rem}
.stw .stw-title{font-size:1.125rem;font-weight:700;line-height:1.3;margin:0 0 .5rem;color:#111827}
.stw p{margin:0 0 .75rem}
.stw a{color:$A;text-decoration:underline}
.stw .stw-note{padding:.5rem .75rem;border-left:4px solid $A;background:#f3f4f6}
.stw-actions{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:.75rem}
.stw .stw-btn{font:inherit;font-weight:600;line-height:1.25;min-height:2.75rem;margin:0;padding:.5rem 1.25rem;border:2px solid $A;border-radius:.375rem;background:$A;color:#fff;cursor:pointer;flex:1 1 11rem}
.stw .stw-alt{background:#fff;color:$A}
.stw :focus-visible{outline:3px solid $A;outline-offset:3px}
.stw-dialog{width:calc(100% - 2rem);max-width:40rem;max-height:calc(100% - 2rem);overflow:auto;border:0;border-radius:.5rem;padding:1.25rem;box-shadow:0 10px 40px rgba(0,0,0,.35)}
.stw-dialog::backdrop{background:rgba(17,24,39,.6)}
.stw-dialog .stw-actions{position:sticky;bottom:-1.25rem;margin:0 -1.25rem -1.25rem;padding:.75rem 1.25rem 1.25rem;background:#fff;border-top:1px solid #e5e7eb}
.stw-head{display:flex;justify-content:space-between;align-items:flex-start;gap:1rem}
.stw .stw-close{font:inherit;font-size:1.5rem;line-height:1;width:2.75rem;height:2.75rem;flex:none;margin:0;padding:0;border:1px solid #6b7280;border-radius:.375rem;background:#fff;color:#111827;cursor:pointer}
.stw-list{list-style:none;margin:0;padding:0}
.stw-item{border-top:1px solid #e5e7eb;padding:.625rem 0}
.stw-row{display:flex;align-items:center;gap:.75rem}
.stw-row label{font-weight:600;cursor:pointer}
.stw .stw-check{width:1.25rem;height:1.25rem;margin:0;flex:none;accent-color:$A}
.stw .stw-desc{color:#4b5563;margin:.125rem 0 0 2rem;font-size:.875rem;line-height:1.4}
.stw-tag{font-weight:400;color:#4b5563}
`;
