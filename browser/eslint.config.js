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
  // The SDK is a classic script on the client's page, for any browser the client supports.
  {
    files: ["sdk/**/*.js"],
    languageOptions: { ecmaVersion: 5, sourceType: "script" },
    rules: { "no-var": "off", "prefer-const": "off" },
  },
];
