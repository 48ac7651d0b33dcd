/**
 * Typings of Steward's consent SDK, served next to the script at
 * /sdk/v1/steward-consent.d.ts. The script defines `window.steward.consent`;
 * see docs/consent-sdk.md.
 */

/** How the SDK is set up: the script tag's data-* attributes, or init(). */
export interface ConsentOptions {
  /** The publishable API key (role `sdk`). Required. */
  key: string;
  /** The product whose purposes are asked about (policy data products.json). Default: "web". */
  product?: string;
  /** Steward's base URL. Default: the origin the script was loaded from. */
  api?: string;
  /** "en", "ru" or "uz". Default: <html lang>, then the browser's language, then "en". */
  lang?: string;
  /** An ISO 3166 code (DE, US-CA) when the page knows where the visitor is. Default: Steward's geo header, else the "default" regime. */
  region?: string;
  /** A CSP nonce for the SDK's <style> element, used only where constructable stylesheets are missing. Default: the script tag's nonce. */
  nonce?: string;
  /** Do not show the banner by itself; the page calls open(). */
  manual?: boolean;
}

/** One purpose the banner asks about (GET /v1/consent/banner). */
export interface BannerPurpose {
  id: string;
  name: string;
  description: string;
  /** Strictly necessary: always on, not a choice. */
  essential: boolean;
  /** Whether it is on when the visitor has not chosen, where they are. */
  default: boolean;
  /** The consent policy's reason for the default (opt_out_default, no_consent, gpc_opt_out, ...). */
  default_reason: string;
  /** Global Privacy Control refuses it where the regime honours GPC. */
  gpc_applies: boolean;
  /** Never on without the visitor switching it on by itself ("Accept all" leaves it off). */
  requires_explicit_consent: boolean;
}

/** What the banner shows, from GET /v1/consent/banner. */
export interface Banner {
  product: string;
  name: string;
  language: string;
  region: string;
  regime: string;
  model: "opt_in" | "opt_out";
  gpc: { signal: boolean; honoured: boolean };
  notice: { version: string; major: number; url: string };
  controller: { name: string; contact: string };
  brand: { accent: string };
  purposes: BannerPurpose[];
  policy_revision: string;
}

/** Purpose id -> allowed now. */
export type Allowed = Record<string, boolean>;

/** The argument of a "change" listener. */
export interface ConsentChange {
  allowed: Allowed;
}

export interface StewardConsent {
  /** Starts the SDK when the script tag has no data-key. Only the first call counts. */
  init(options: ConsentOptions): void;
  /** Settles once the banner data has been fetched (or could not be). */
  readonly ready: Promise<void>;
  /** Whether the purpose is allowed now, from the stored choice and the jurisdiction's defaults. Synchronous; false until known. */
  allowed(purpose: string): boolean;
  /** Calls fn whenever what is allowed changes; a listener added after the SDK is ready is also called once with the current state. Returns a function that removes it. The same news goes to document as the "steward:consent" event (detail: ConsentChange), which a page can listen for before the SDK has loaded. */
  on(event: "change", fn: (e: ConsentChange) => void): () => void;
  off(event: "change", fn: (e: ConsentChange) => void): void;
  /** Opens the preferences dialog. */
  open(): void;
  /** Records a grant of every optional purpose the visitor may accept at once. */
  acceptAll(): Promise<void>;
  /** Records a refusal of every optional purpose. */
  rejectAll(): Promise<void>;
  /** Records the given choices (purposes left out are refused). */
  set(choices: Allowed): Promise<void>;
  /** The anonymous subject the choices are recorded under: "visitor:<id>". */
  subject(): string;
  /** The banner data, once fetched. */
  banner(): Banner | null;
}

declare global {
  interface Window {
    steward: { consent: StewardConsent };
  }
  interface Navigator {
    globalPrivacyControl?: boolean;
  }
}
