/**
 * The one way Berth masks a URL before printing or logging it (`berth config check`, database
 * errors, `berth migrate-metadata`, the registry client's errors): the password of the user
 * info (postgres://user:pw@host) and the values of query parameters that carry credentials
 * (?password=, ?sslpassword=, presigned-URL signatures, tokens, keys) become `********`.
 * Host, user name (unless `dropUser`), database and other parameters stay, for diagnosis.
 */

export const MASK = '********';

/** Query parameters whose value is a credential (libpq's password/sslpassword, MySQL's password, signed URLs' sig/signature/token/credential). */
const SECRET_PARAM = /sig|signature|token|credential|secret|passw|pwd|key|auth|^se$|^sp$/i;

/** The URL with its secrets masked; returned unchanged (not re-encoded) when it holds none. */
export function redactUrl(input: string | URL, options: { dropUser?: boolean } = {}): string {
  const text = String(input);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return redactUnparsed(text);
  }
  let changed = false;
  if (options.dropUser && (url.username || url.password)) {
    url.username = '';
    url.password = '';
    changed = true;
  } else if (url.password) {
    url.password = MASK;
    changed = true;
  }
  for (const name of new Set(url.searchParams.keys())) {
    if (SECRET_PARAM.test(name)) {
      url.searchParams.set(name, MASK);
      changed = true;
    }
  }
  return changed ? url.toString() : text;
}

/**
 * A string the URL parser refuses (a bad port, stray characters) may still hold a password:
 * mask `//user:password@` and secret `name=value` pairs textually.
 */
function redactUnparsed(text: string): string {
  return text
    .replace(/(\/\/[^:/@\s]*):[^@\s]*@/g, `$1:${MASK}@`)
    .replace(/([?&;]([^=&#\s]*)=)([^&#\s]*)/g, (whole, head: string, name: string) => (SECRET_PARAM.test(name) ? `${head}${MASK}` : whole));
}
