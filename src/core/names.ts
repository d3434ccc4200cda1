import { RegistryError } from './errors.js';

/** Repository name grammar from the distribution spec (path components joined by '/'). */
const NAME_PATTERN = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
/** Tag grammar from the distribution spec. */
const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Same limit as CNCF Distribution: the whole name, including slashes. */
export const MAX_NAME_LENGTH = 255;

export function validateRepositoryName(name: string): string {
  if (name.length === 0) throw new RegistryError('NAME_INVALID', 'repository name must not be empty');
  if (name.length > MAX_NAME_LENGTH) {
    throw new RegistryError('NAME_INVALID', `repository name is longer than ${MAX_NAME_LENGTH} characters`, {
      name: name.slice(0, 64),
    });
  }
  if (!NAME_PATTERN.test(name)) {
    throw new RegistryError(
      'NAME_INVALID',
      'invalid repository name: use lowercase path components of [a-z0-9] separated by ".", "_", "__", "-" and "/"',
      { name },
    );
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return TAG_PATTERN.test(tag);
}

export function validateTag(tag: string): string {
  if (!isValidTag(tag)) {
    throw new RegistryError('TAG_INVALID', `invalid tag "${tag.slice(0, 140)}": must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`);
  }
  return tag;
}

/**
 * The project a repository belongs to: its first path component. `team-a/app/api` is in
 * project `team-a`; a single-component name such as `alpine` is the root repository of
 * project `alpine` (Harbor has no project-less repositories, and `library/` is not implied).
 */
export function projectOf(repository: string): string {
  const slash = repository.indexOf('/');
  return slash === -1 ? repository : repository.slice(0, slash);
}
