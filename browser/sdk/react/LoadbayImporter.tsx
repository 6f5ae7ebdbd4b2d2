// The React wrapper of the embed SDK: <LoadbayImporter server=... publishableKey=...
// template=... onData={...} />. It loads embed.js from the loadbay server (once per page)
// and opens the importer inline in its own <div>, or as a modal with `modal`.
import { useEffect, useRef } from "react";
import type { CSSProperties } from "react";

/** The steps onStep reports, in the order a user passes them (README, "Embedding loadbay"). */
export type Step =
  | "ready"
  | "engine-ready"
  | "start"
  | "mapping"
  | "review"
  | "submitting"
  | "done"
  | "over-host-page-cap";

/** The theme keys (README, "Theming"); the dashboard's theme settings use the same. */
export interface Theme {
  primary?: string;
  background?: string;
  text?: string;
  error?: string;
  font?: string;
  radius?: string;
  /** a data:image/...;base64 URL */
  logo?: string;
}

export interface HandedRows {
  importId: string;
  rows: Record<string, unknown>[];
  total: number;
}

export interface Completed {
  importId: string;
  rows: number;
  status: string;
}

export interface OpenOptions {
  server?: string;
  publishableKey: string;
  template: string;
  /** a signed identity token from your backend (README, "End-user identity") */
  user?: string;
  metadata?: Record<string, unknown>;
  locale?: string;
  theme?: Theme;
  text?: Record<string, string>;
  container?: HTMLElement;
  onStep?: (step: Step) => void;
  /** Host-page destination: the rows; returning (or resolving) acknowledges them. */
  onData?: (data: HandedRows) => void | Promise<void>;
  onComplete?: (result: Completed) => void;
  onCancel?: () => void;
  onError?: (error: { message: string }) => void;
}

export interface Importer {
  iframe: HTMLIFrameElement;
  close: () => void;
}

export interface LoadbaySdk {
  open: (options: OpenOptions) => Importer;
  preload: (server: string) => void;
  version: number;
}

declare global {
  interface Window {
    loadbay?: LoadbaySdk;
  }
}

export type LoadbayImporterProps = Omit<OpenOptions, "container" | "server"> & {
  /** the loadbay origin, e.g. https://import.example.com */
  server: string;
  /** a modal over the page instead of inline */
  modal?: boolean;
  className?: string;
  style?: CSSProperties;
};

const loading = new Map<string, Promise<LoadbaySdk>>();

/** embed.js from `server`, loaded once per page. */
export function loadSdk(server: string): Promise<LoadbaySdk> {
  const origin = new URL(server).origin;
  if (window.loadbay) return Promise.resolve(window.loadbay);
  let promise = loading.get(origin);
  if (!promise) {
    promise = new Promise<LoadbaySdk>((resolve, reject) => {
      const script = document.createElement("script");
      script.src = `${origin}/embed.js`;
      script.async = true;
      script.onload = () =>
        window.loadbay ? resolve(window.loadbay) : reject(new Error("embed.js did not define loadbay"));
      script.onerror = () => reject(new Error(`embed.js could not be loaded from ${origin}`));
      document.head.appendChild(script);
    });
    loading.set(origin, promise);
  }
  return promise;
}

export function LoadbayImporter(props: LoadbayImporterProps) {
  const box = useRef<HTMLDivElement>(null);
  // The latest callbacks, without reopening the importer when a parent re-renders.
  const latest = useRef(props);
  latest.current = props;
  const { server, publishableKey, template, user, locale, modal } = props;

  useEffect(() => {
    let importer: Importer | null = null;
    let gone = false;
    loadSdk(server).then(
      (sdk) => {
        if (gone) return;
        const p = latest.current;
        importer = sdk.open({
          server,
          publishableKey,
          template,
          user,
          locale,
          metadata: p.metadata,
          theme: p.theme,
          text: p.text,
          container: modal ? undefined : (box.current ?? undefined),
          onStep: (step) => latest.current.onStep?.(step),
          onData: (data) => latest.current.onData?.(data),
          onComplete: (result) => latest.current.onComplete?.(result),
          onCancel: () => latest.current.onCancel?.(),
          onError: (error) => latest.current.onError?.(error),
        });
      },
      (error: Error) => latest.current.onError?.({ message: error.message }),
    );
    return () => {
      gone = true;
      importer?.close();
    };
  }, [server, publishableKey, template, user, locale, modal]);

  if (modal) return null;
  return (
    <div ref={box} className={props.className} style={props.style ?? { height: "40rem" }} data-loadbay="react" />
  );
}

export default LoadbayImporter;
