// ESLint for the browser client (static/): the recommended rules, browser globals, ES modules
// (every page script is a <script type="module">). Node runs the unit tests under
// static/client/tests, so they get Node's globals too. `make check` runs it.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["static/**/*.js", "static/**/*.mjs"],
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "module",
      globals: { ...globals.browser },
    },
  },
  {
    files: ["static/client/tests/**/*.mjs"],
    languageOptions: { globals: { ...globals.node } },
  },
];
