// Lint for the importer's JavaScript: `make lint` runs it (browser/node_modules is dev-only).
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["node_modules/**"] },
  js.configs.recommended,
  {
    files: ["**/*.js", "**/*.mjs"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.browser },
    rules: {
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-var": "error",
      "prefer-const": "error",
      "no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  { files: ["worker.mjs"], languageOptions: { globals: globals.worker } },
  { files: ["eslint.config.js"], languageOptions: { globals: globals.node } },
  // The SDK: ES modules, bundled (tools/build_assets.py) into one ES2017 classic script.
  {
    files: ["sdk/**/*.js", "src/protocol.js"],
    languageOptions: { ecmaVersion: 2017, sourceType: "module" },
    rules: { "no-var": "off", "prefer-const": "off" },
  },
];
