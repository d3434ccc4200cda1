/**
 * OIDC's narrow port onto the metadata database (src/metadata/oidc-store.ts, migration
 * 0010-oidc): which provider identity each OIDC user is, with the groups of their last login,
 * and their registry CLI secret. The users row itself is auth's (UserRows), created with the
 * OIDC_MARKER instead of a password hash. Times are Dates.
 */

/** The provider identity behind a Berth user who logs in through OIDC. */
export interface OidcLink {
  username: string;
  /** auth.oidc.providers[].name */
  provider: string;
  /** The provider's `sub`: the same name from another subject is never taken over. */
  subject: string;
  email: string | null;
  /** The groups claim of the last login or direct token (group roles are evaluated from these). */
  groups: string[];
  lastLoginAt: Date;
}

/** A registry CLI secret: stored as a sha256 (256 random bits, like refresh tokens), shown once. */
export interface CliSecretRecord {
  username: string;
  hash: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface OidcStore {
  getLink(username: string): Promise<OidcLink | null>;
  /** Inserts the link; false when the username already has one (whoever it names). */
  createLink(link: OidcLink): Promise<boolean>;
  /** Updates email, groups and last login of an existing link (same provider and subject). */
  updateLink(link: OidcLink): Promise<void>;
  getCliSecret(username: string): Promise<CliSecretRecord | null>;
  /** Replaces the user's CLI secret (one per user, as Harbor). */
  saveCliSecret(secret: CliSecretRecord): Promise<void>;
  deleteCliSecret(username: string): Promise<boolean>;
}
