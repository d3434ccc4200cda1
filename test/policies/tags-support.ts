import assert from 'node:assert/strict';
import { addMember, addProject, addUser, api, basic, type HasUrl } from '../auth/support.js';
import { jsonBlob, makeImage, RegistryClient, type Image } from '../helpers/registry-client.js';

/** Users of the tag-policy suites: a project-admin and a developer of `team`, a guest of `team`, and the admin of another project. */
export const USERS = {
  owner: basic('owner', 'owner-password'),
  dev: basic('dev', 'dev-password'),
  guest: basic('guest', 'guest-password'),
  outsider: basic('outsider', 'outsider-password'),
};

export async function seedTeam(server: HasUrl): Promise<void> {
  for (const name of ['owner', 'dev', 'guest', 'outsider']) await addUser(server, name, `${name}-password`);
  await addProject(server, 'team');
  await addProject(server, 'other');
  await addMember(server, 'team', 'owner', 'project-admin');
  await addMember(server, 'team', 'dev', 'developer');
  await addMember(server, 'team', 'guest', 'guest');
  await addMember(server, 'other', 'outsider', 'project-admin');
}

/** Only what a push and a restore need: project `team` and its developer `dev` (fewer password hashes, faster start). */
export async function seedDeveloper(server: HasUrl): Promise<void> {
  await addUser(server, 'dev', 'dev-password');
  await addProject(server, 'team');
  await addMember(server, 'team', 'dev', 'developer');
}

/** A registry client signed in as `authorization` (auth.mode basic). */
export function clientAs(server: HasUrl, authorization: string): RegistryClient {
  return new RegistryClient(server.url, { authorization });
}

/** Another image over the same blobs as `image` (a different manifest digest, no new upload). */
export function variant(image: Image, label: string): Image {
  const manifest = JSON.parse(image.manifest.data.toString()) as Record<string, unknown>;
  return { ...image, manifest: jsonBlob({ ...manifest, annotations: { variant: label } }) };
}

/** A small image (one 64-byte layer). */
export function smallImage(): Image {
  return makeImage({ layers: 1, layerSize: 64 });
}

/** The spec error of a refused request. */
export async function refusal(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] };
  return { status: res.status, code: body.errors[0]!.code, message: body.errors[0]!.message };
}

/** Creates an immutable rule in `project` as `authorization`; returns its id. */
export async function addRule(server: HasUrl, authorization: string, project: string, rule: unknown): Promise<number> {
  const res = await api(server, 'POST', `/projects/${project}/immutable-rules`, authorization, rule);
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { id: number }).id;
}
