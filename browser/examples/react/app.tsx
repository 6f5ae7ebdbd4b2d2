// The React quick start (README, "Embedding loadbay"): the importer inline in a component.
// tests/e2e/test_sdk.py bundles this file with esbuild (React from node_modules, nothing
// from a CDN) and drives it in Chromium.
import { useState } from "react";
import { createRoot } from "react-dom/client";
import { LoadbayImporter, type HandedRows } from "../../sdk/react/LoadbayImporter";

declare global {
  interface Window {
    LOADBAY: { server: string; publishableKey: string; template: string };
    received: Record<string, unknown>[];
  }
}

function App() {
  const [status, setStatus] = useState("No import yet.");
  const [steps, setSteps] = useState<string[]>([]);
  return (
    <main>
      <h1>Contacts (React)</h1>
      <p id="status">{status}</p>
      <LoadbayImporter
        server={window.LOADBAY.server}
        publishableKey={window.LOADBAY.publishableKey}
        template={window.LOADBAY.template}
        theme={{ primary: "#6b2fa3" }}
        onStep={(step) => setSteps((seen) => [...seen, step])}
        onData={({ rows }: HandedRows) => {
          window.received = rows;
        }}
        onComplete={({ rows, status: done }) => setStatus(`Import ${done} (${rows} rows)`)}
        onError={({ message }) => setStatus(`Error: ${message}`)}
      />
      <ul id="steps">
        {steps.map((step, i) => (
          <li key={i}>{step}</li>
        ))}
      </ul>
    </main>
  );
}

window.received = [];
createRoot(document.getElementById("root") as HTMLElement).render(<App />);
