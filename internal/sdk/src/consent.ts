// Steward's consent SDK: the banner and preferences dialog for a product's
// purposes, the visitor's choices recorded in Steward's consent ledger with
// the publishable key, steward.consent.allowed(), change events, and the
// gating of <script type="text/plain" data-consent="..."> until allowed.
//
// Built by esbuild's Go API (internal/sdk/sdkbuild) into one minified
// script embedded in the steward binary; no Node is needed to build or run
// it. Keep it small (a test holds it under 10 KB gzipped) and free of
// dependencies.
import type { Allowed, Banner, BannerPurpose, ConsentChange, ConsentOptions, StewardConsent } from "./steward-consent";
import { pickLang, words, Strings } from "./i18n";
import { css } from "./styles";

type Source = "web_banner" | "web_settings";

/** A choice as kept in the browser. */
interface Stored {
  v: 1;
  /** The notice version and its major the choice was made under. */
  notice: string;
  major: number;
  at: string;
  /** Global Privacy Control was on when the choice was made: a grant made with it on stands (policies/consent.rego). */
  gpc: boolean;
  choices: Allowed;
}

/** A choice not yet acknowledged by Steward, sent again on the next page. */
interface Pending {
  purpose: string;
  state: "granted" | "denied" | "withdrawn";
  source: Source;
  notice: string;
  region: string;
  at: string;
}

const doc = document;
const nav = navigator;
// Read now: currentScript is only set while this script first runs.
const me = doc.currentScript as HTMLScriptElement | null;

let opts: ConsentOptions | null = null;
let api = "";
let lang = "en";
let S: Strings = words("en");
let banner: Banner | null = null;
let stored: Stored | null = null;
let gpc = false;
// settled: the banner data came (or failed); gated scripts wait for it, so a
// grant given under an older notice cannot run a script before we know.
let settled = false;
let last = "";
const listeners: ((e: ConsentChange) => void)[] = [];
let resolveReady: () => void = () => {};
const ready = new Promise<void>((r) => (resolveReady = r));
let bannerEl: HTMLElement | null = null;
let dialogEl: HTMLDialogElement | null = null;
let opener: Element | null = null;
let styled = false;

// ---- storage: localStorage, else a first-party cookie --------------------

function load(k: string): string | null {
  try {
    return localStorage.getItem(k);
  } catch {
    const m = doc.cookie.match(new RegExp("(?:^|; )" + k.replace(/\./g, "\\.") + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
}

function save(k: string, v: string): void {
  try {
    localStorage.setItem(k, v);
  } catch {
    doc.cookie = k + "=" + encodeURIComponent(v) + "; Max-Age=34560000; Path=/; SameSite=Lax" + (location.protocol == "https:" ? "; Secure" : "");
  }
}

const product = () => (opts && opts.product) || "web";
const choiceKey = () => "steward.consent." + product();
const pendingKey = () => "steward.pending." + product();

/** The anonymous visitor id (identity "visitor:", 8-128 of A-Z a-z 0-9 - _ .): 128 random bits. */
function visitor(): string {
  let v = load("steward.visitor");
  if (!v || !/^[\w.-]{8,128}$/.test(v)) {
    v = Array.from(crypto.getRandomValues(new Uint8Array(16)), (x) => (x + 256).toString(16).slice(1)).join("");
    save("steward.visitor", v);
  }
  return v;
}

function readJSON<T>(k: string): T | null {
  try {
    return JSON.parse(load(k) || "null");
  } catch {
    return null;
  }
}

// ---- what is allowed -------------------------------------------------------

/** The stored choice was made under the notice's current major version. */
const current = () => !!stored && !!banner && stored.major === banner.notice.major;
const gpcHonoured = () => gpc && !!banner && banner.gpc.honoured;
const purpose = (id: string) => (banner ? banner.purposes.find((p) => p.id === id) : undefined);

/** Mirrors policies/consent.rego for a visitor with no age: what a check would answer. */
function allowed(id: string): boolean {
  const c = stored ? stored.choices[id] : undefined;
  if (!banner) return settled && c === true;
  const p = purpose(id);
  if (!p) return false;
  if (p.essential) return true;
  if (c === false) return false; // a refusal stands under any notice
  if (c === true) return current() && !(gpcHonoured() && p.gpc_applies && !stored!.gpc);
  return p.default;
}

function allAllowed(): Allowed {
  const a: Allowed = {};
  if (banner) for (const p of banner.purposes) a[p.id] = allowed(p.id);
  else if (stored) for (const k in stored.choices) a[k] = allowed(k);
  return a;
}

/** Tells listeners (and the page, as a "steward:consent" event) when what is allowed changes, and runs newly allowed scripts. */
function emit(): void {
  if (!settled) return;
  const a = allAllowed();
  gate();
  const k = JSON.stringify(a);
  if (k === last) return;
  last = k;
  for (const f of listeners.slice()) {
    try {
      f({ allowed: a });
    } catch (e) {
      console.error(e);
    }
  }
  doc.dispatchEvent(new CustomEvent("steward:consent", { detail: { allowed: a } }));
}

// ---- script gating ---------------------------------------------------------

/**
 * Re-creates each <script type="text/plain" data-consent="p1 p2"> whose
 * purposes are all allowed as a real script: attributes copied, the nonce
 * carried over (a host CSP with nonces lets it run), order kept for
 * external scripts unless they ask for async.
 */
function gate(): void {
  if (!settled) return;
  doc.querySelectorAll<HTMLScriptElement>('script[type="text/plain"][data-consent]').forEach((el) => {
    const need = (el.getAttribute("data-consent") || "").split(/[\s,]+/).filter(Boolean);
    if (!need.length || !need.every(allowed)) return;
    const s = doc.createElement("script");
    for (const a of Array.from(el.attributes)) {
      if (!/^(type|nonce|data-consent|data-type)$/.test(a.name)) s.setAttribute(a.name, a.value);
    }
    const type = el.getAttribute("data-type");
    if (type) s.type = type;
    s.nonce = el.nonce || "";
    s.async = el.hasAttribute("async");
    s.setAttribute("data-consent-activated", need.join(" "));
    if (!el.src) s.text = el.text;
    el.replaceWith(s);
  });
}

// ---- recording -------------------------------------------------------------

function request(path: string, init: RequestInit): Promise<Response> {
  const headers: Record<string, string> = { Authorization: "Bearer " + opts!.key };
  if (init.body) headers["Content-Type"] = "application/json";
  return fetch(api + path, { ...init, headers, mode: "cors", credentials: "omit" });
}

let flushing: Promise<void> | null = null;

/** Sends every pending choice; keeps those that failed for a reason worth retrying (network, 408, 429, 5xx). */
function flush(): Promise<void> {
  if (flushing) return flushing.then(flush);
  const queue = readJSON<Pending[]>(pendingKey()) || [];
  if (!queue.length || !banner) return Promise.resolve();
  const subject = "visitor:" + visitor();
  flushing = Promise.all(
    queue.map((r) =>
      request("/v1/consents", {
        method: "POST",
        body: JSON.stringify({
          subject,
          purpose: r.purpose,
          state: r.state,
          source: r.source,
          notice_version: r.notice,
          jurisdiction: r.region || undefined,
          language: lang,
          product: product(),
        }),
      }).then(
        (res) => {
          const retry = res.status >= 500 || res.status == 408 || res.status == 429;
          if (!res.ok && !retry) console.warn("steward: consent for " + r.purpose + " refused: HTTP " + res.status);
          return !retry;
        },
        () => false,
      ),
    ),
  ).then((done) => {
    // Drop what was sent; choices queued meanwhile stay.
    const sent = queue.filter((_, i) => done[i]);
    const left = (readJSON<Pending[]>(pendingKey()) || []).filter((p) => !sent.some((s) => s.purpose == p.purpose && s.at == p.at));
    save(pendingKey(), JSON.stringify(left));
    flushing = null;
  });
  return flushing;
}

/**
 * Keeps a choice: stored at once (so allowed() answers from it), then
 * recorded in the ledger. Purposes whose choice did not change under the
 * same notice are not recorded again.
 */
async function choose(choices: Allowed, source: Source): Promise<void> {
  await ready;
  const b = banner;
  if (!b) throw new Error("steward: the consent banner data could not be fetched");
  const prev = stored ? stored.choices : {};
  const same = current();
  const now = new Date().toISOString();
  const next: Allowed = {};
  const fresh: Pending[] = [];
  for (const p of b.purposes) {
    if (p.essential) continue;
    const on = !!choices[p.id];
    next[p.id] = on;
    // A grant made before GPC was on is recorded again, now under GPC.
    if (same && prev[p.id] === on && !(on && gpcHonoured() && p.gpc_applies && !stored!.gpc)) continue;
    fresh.push({ purpose: p.id, state: on ? "granted" : prev[p.id] ? "withdrawn" : "denied", source, notice: b.notice.version, region: b.region, at: now });
  }
  // An unsent older choice for the same purpose is superseded.
  const queue = (readJSON<Pending[]>(pendingKey()) || []).filter((q) => !fresh.some((f) => f.purpose == q.purpose)).concat(fresh);
  stored = { v: 1, notice: b.notice.version, major: b.notice.major, at: now, gpc, choices: next };
  save(choiceKey(), JSON.stringify(stored));
  save(pendingKey(), JSON.stringify(queue));
  hideBanner();
  closeDialog();
  emit();
  await flush();
}

/** "Accept all": every optional purpose, except those GPC refuses here and those that need the visitor to switch them on themselves. */
function all(): Allowed {
  const a: Allowed = {};
  for (const p of banner ? banner.purposes : []) a[p.id] = !p.requires_explicit_consent && !(gpcHonoured() && p.gpc_applies);
  return a;
}

// ---- the banner and the dialog ----------------------------------------------

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...kids: (Node | string | null)[]): HTMLElementTagNameMap[K] {
  const e = doc.createElement(tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  for (const c of kids) if (c != null) e.append(c);
  return e;
}

/** A button; data-act names what it does, for the page's own tests and tag managers. */
function button(label: string, cls: string, act: string, fn: () => void): HTMLButtonElement {
  const b = h("button", { type: "button", class: cls, "data-act": act }, label);
  b.addEventListener("click", fn);
  return b;
}

function addStyle(): void {
  if (styled) return;
  styled = true;
  const accent = banner && /^#[0-9a-f]{6}$/i.test(banner.brand.accent) ? banner.brand.accent : "#1d4ed8";
  const text = css.replace(/\$A/g, accent);
  try {
    // Constructed stylesheets are not inline styles: a CSP without
    // 'unsafe-inline' in style-src lets them apply.
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(text);
    doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
  } catch {
    const el = h("style");
    if (opts!.nonce) el.nonce = opts!.nonce;
    el.textContent = text;
    doc.head.append(el);
  }
}

function noticeLink(): Node | null {
  const u = banner!.notice.url;
  return /^https?:\/\//.test(u) ? h("a", { href: u }, S.notice) : null;
}

function gpcNote(): Node | null {
  if (!gpc) return null;
  const names = banner!.purposes.filter((p) => p.gpc_applies && !p.essential).map((p) => p.name);
  const text = gpcHonoured() && names.length ? S.gpcOn.replace("{list}", names.join(", ")) : S.gpcSeen;
  return h("p", { class: "stw-note", "data-gpc": gpcHonoured() ? "honoured" : "seen" }, text);
}

function actions(third: HTMLButtonElement, src: Source): HTMLElement {
  // "Reject all" comes first and looks exactly like "Accept all".
  return h("div", { class: "stw-actions" }, button(S.reject, "stw-btn", "reject", () => choose({}, src)), button(S.accept, "stw-btn", "accept", () => choose(all(), src)), third);
}

function showBanner(): void {
  if (bannerEl || !banner) return;
  addStyle();
  const again = !!stored && !current();
  // First in the document, so the first Tab reaches it and screen readers meet it first.
  bannerEl = h(
    "div",
    { class: "stw stw-banner", role: "dialog", "aria-modal": "false", "aria-labelledby": "stw-b-title", "aria-describedby": "stw-b-text", lang },
    h(
      "div",
      { class: "stw-in" },
      h("h2", { id: "stw-b-title", class: "stw-title" }, S.title),
      h("p", { id: "stw-b-text" }, again ? S.reconsent + " " : "", S.text + " ", noticeLink()),
      gpcNote(),
      actions(button(S.prefs, "stw-btn stw-alt", "prefs", open), "web_banner"),
    ),
  );
  doc.body.prepend(bannerEl);
}

function hideBanner(): void {
  if (bannerEl) bannerEl.remove();
  bannerEl = null;
}

function open(): void {
  if (!banner) {
    if (!settled) ready.then(() => banner && open());
    return;
  }
  if (dialogEl) return;
  addStyle();
  opener = doc.activeElement;
  const d = h("dialog", { class: "stw stw-dialog", "aria-modal": "true", "aria-labelledby": "stw-d-title", "aria-describedby": "stw-d-text", lang });
  const close = button("×", "stw-close", "close", closeDialog);
  close.setAttribute("aria-label", S.close);
  const items = banner.purposes.map((p: BannerPurpose) => {
    const box = h("input", { type: "checkbox", id: "stw-p-" + p.id, class: "stw-check", "aria-describedby": "stw-x-" + p.id, "data-purpose": p.id });
    const c = stored ? stored.choices[p.id] : undefined;
    box.checked = p.essential || (c === undefined || current() ? allowed(p.id) : c);
    box.disabled = p.essential;
    return h(
      "li",
      { class: "stw-item" },
      h("div", { class: "stw-row" }, box, h("label", { for: box.id }, p.name, p.essential ? h("span", { class: "stw-tag" }, " " + S.always) : null)),
      h("p", { id: "stw-x-" + p.id, class: "stw-desc" }, p.description + (p.requires_explicit_consent ? " " + S.explicit : "")),
    );
  });
  const fromBoxes = () => {
    const a: Allowed = {};
    d.querySelectorAll<HTMLInputElement>("input[data-purpose]").forEach((b) => (a[b.dataset.purpose!] = b.checked));
    return a;
  };
  d.append(
    h("div", { class: "stw-head" }, h("h2", { id: "stw-d-title", class: "stw-title" }, S.prefsTitle), close),
    h("p", { id: "stw-d-text" }, S.prefsText + " ", noticeLink()),
    gpcNote() || "",
    h("ul", { class: "stw-list" }, ...items),
    actions(
      button(S.save, "stw-btn stw-alt", "save", () => choose(fromBoxes(), "web_settings")),
      "web_settings",
    ),
  );
  // Escape closes without saving; the native dialog reports it as cancel.
  d.addEventListener("cancel", (e) => {
    e.preventDefault();
    closeDialog();
  });
  d.addEventListener("keydown", trap);
  doc.body.append(d);
  dialogEl = d;
  d.showModal();
  const first = d.querySelector<HTMLElement>("input:not([disabled])") || close;
  first.focus();
}

/** Keeps Tab and Shift+Tab inside the open dialog. */
function trap(e: KeyboardEvent): void {
  if (e.key != "Tab" || !dialogEl) return;
  const f = Array.from(dialogEl.querySelectorAll<HTMLElement>("a[href],button,input:not([disabled])"));
  const first = f[0];
  const end = f[f.length - 1];
  if (e.shiftKey ? doc.activeElement == first : doc.activeElement == end) {
    e.preventDefault();
    (e.shiftKey ? end : first).focus();
  }
}

function closeDialog(): void {
  if (!dialogEl) return;
  dialogEl.close();
  dialogEl.remove();
  dialogEl = null;
  // Back to where the visitor was, if it is still there.
  const back = opener instanceof HTMLElement && opener.isConnected ? opener : null;
  opener = null;
  if (back) back.focus();
}

// ---- start -------------------------------------------------------------------

function domReady(): Promise<void> {
  return doc.readyState == "loading" ? new Promise((r) => doc.addEventListener("DOMContentLoaded", () => r(), { once: true })) : Promise.resolve();
}

function init(o: ConsentOptions): void {
  if (opts) return;
  if (!o || !o.key) {
    console.error("steward: the consent SDK needs the publishable key (data-key)");
    return;
  }
  opts = o;
  api = (o.api || (me && me.src ? new URL(me.src).origin : location.origin)).replace(/\/+$/, "");
  lang = pickLang(o.lang || doc.documentElement.lang || nav.language);
  S = words(lang);
  gpc = nav.globalPrivacyControl === true;
  stored = readJSON<Stored>(choiceKey());
  if (!stored || stored.v !== 1 || typeof stored.choices != "object") stored = null;
  const q = new URLSearchParams({ product: product(), lang });
  if (o.region) q.set("region", o.region);
  if (gpc) q.set("gpc", "1");
  request("/v1/consent/banner?" + q, {})
    .then((res) => {
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    })
    .then(
      (b: Banner) => {
        banner = b;
        gpc = gpc || b.gpc.signal;
      },
      (e) => console.warn("steward: consent banner data unavailable (" + e.message + "); using the stored choice only"),
    )
    .then(domReady)
    .then(() => {
      settled = true;
      emit();
      // Scripts added to the page later are gated too.
      new MutationObserver(gate).observe(doc.documentElement, { childList: true, subtree: true });
      if (banner) {
        flush();
        if (!current() && !o.manual) showBanner();
      }
      resolveReady();
    });
}

const consent: StewardConsent = {
  init,
  ready,
  allowed,
  on(_event, fn) {
    listeners.push(fn);
    // A listener added late hears the state it missed, once.
    if (settled) queueMicrotask(() => listeners.includes(fn) && fn({ allowed: allAllowed() }));
    return () => consent.off("change", fn);
  },
  off(_event, fn) {
    const i = listeners.indexOf(fn);
    if (i >= 0) listeners.splice(i, 1);
  },
  open,
  acceptAll: () => ready.then(() => choose(all(), "web_settings")),
  rejectAll: () => choose({}, "web_settings"),
  set: (choices) => choose(choices, "web_settings"),
  subject: () => "visitor:" + visitor(),
  banner: () => banner,
};

const w = window as unknown as { steward?: { consent?: StewardConsent } };
w.steward = w.steward || {};
if (!w.steward.consent) {
  w.steward.consent = consent;
  const d = me ? me.dataset : undefined;
  if (d && d.key) {
    init({ key: d.key, product: d.product, api: d.api, lang: d.lang, region: d.region, nonce: d.nonce || me!.nonce, manual: me!.hasAttribute("data-manual") });
  }
}
