// Where to go after sign-in: the `next` parameter, but only ever a page of this origin.
//
// A prefix check ("starts with / but not //") is not enough: browsers read "/\evil.test"
// as "//evil.test" and drop tabs and newlines ("/\t/evil.test"), and "/a/..//evil.test"
// normalises to "//evil.test". So resolve it the way the browser will, against this
// page's origin, keep it only if the origin is unchanged, and return a path that starts
// with exactly one "/" (a path-relative "//host" would leave the origin again).
export function sameOriginPath(next, origin, fallback = "/lobby/") {
  if (typeof next !== "string" || !next) return fallback;
  let url;
  try {
    url = new URL(next, origin);
  } catch {
    return fallback;
  }
  if (url.origin !== new URL(origin).origin) return fallback;
  return url.pathname.replace(/^\/+/, "/") + url.search + url.hash;
}
