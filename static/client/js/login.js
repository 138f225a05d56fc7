import { ApiError, sessionSignIn, signIn, tokens } from "./api.js";
import { sameOriginPath } from "./next.js";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
const params = new URLSearchParams(location.search);

// Only pages of this origin: never bounce a user elsewhere after sign-in (next.js).
function nextPath() {
  return sameOriginPath(params.get("next"), location.origin);
}

function show(message) {
  error.textContent = message;
  error.hidden = !message;
}

if (params.get("message")) show(params.get("message"));
if (tokens()?.access && !params.get("message")) location.replace(nextPath());

// The account pages (password or an external provider) come back here with a cookie session:
// trade it for this tab's tokens. No session: the form below stays.
const accounts = document.getElementById("login-accounts");
if (accounts) {
  accounts.href = `/accounts/login/?next=${encodeURIComponent(`/login/?next=${encodeURIComponent(nextPath())}`)}`;
}
if (!tokens()?.access) {
  sessionSignIn()
    .then((pair) => pair && location.replace(nextPath()))
    .catch(() => {});
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  show("");
  const button = document.getElementById("login-submit");
  button.disabled = true;
  try {
    await signIn(form.username.value.trim(), form.password.value);
    location.assign(nextPath());
  } catch (err) {
    if (err instanceof ApiError && err.code === "login_locked") {
      show("Too many failed attempts. Wait a few minutes and try again.");
    } else if (err instanceof ApiError && err.status === 401) {
      show("Wrong username or password.");
    } else if (err instanceof ApiError && err.status === 400) {
      show("Enter your username and password.");
    } else {
      show(`Could not sign in: ${err.message}`);
    }
  } finally {
    button.disabled = false;
  }
});
