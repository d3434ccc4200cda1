import { z } from 'zod';
import { RegistryError } from '../../core/errors.js';
import { validateRepositoryName } from '../../core/names.js';
import { TRUST_MODES, type TrustMode } from '../../signatures/index.js';
import type { SignatureService } from '../../signatures/service.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';
import { Timestamp } from './schemas.js';

const KEYLESS = z.lazy(() => z.string().describe('why keyless (Fulcio/Rekor) signatures are not verified'));
const TrustedKeySchema = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      name: z.string(),
      kind: z.enum(['key', 'certificate']),
      fingerprint: z.string(),
      createdBy: z.string().nullable(),
      createdAt: Timestamp,
      pem: z.string(),
      subject: z.string().optional().describe('a certificate: its subject'),
      notBefore: z.string().optional(),
      notAfter: z.string().optional(),
    })
    .meta({ id: 'TrustedKey' }),
);
const SignaturePolicySchema = z.lazy(() =>
  z
    .strictObject({
      project: z.string(),
      mode: z.enum(TRUST_MODES),
      inheritIndex: z.boolean(),
      keys: z.array(TrustedKeySchema),
      updatedBy: z.string().nullable(),
      updatedAt: z.string().nullable(),
      keyless: KEYLESS,
    })
    .meta({ id: 'SignaturePolicy' }),
);
const Signer = z.strictObject({
  kind: z.enum(['key', 'certificate']),
  id: z.number(),
  name: z.string(),
  fingerprint: z.string(),
  subject: z.string().optional(),
});
const SignatureStatusSchema = z.lazy(() =>
  z
    .strictObject({
      repository: z.string(),
      digest: z.string(),
      policy: z.strictObject({ mode: z.enum(TRUST_MODES), inheritIndex: z.boolean() }),
      verified: z.boolean().describe('at least one signature is valid'),
      signatures: z.array(
        z.strictObject({
          format: z.enum(['cosign', 'sigstore-bundle', 'notation']),
          source: z.union([z.strictObject({ kind: z.literal('tag'), tag: z.string() }), z.strictObject({ kind: z.literal('referrer') })]),
          manifest: z.string().describe("the signature manifest's digest"),
          layer: z.string().nullable(),
          valid: z.boolean(),
          signer: Signer.optional().describe('a valid signature: the key or certificate that verified it'),
          reason: z.string().optional().describe('an invalid signature: why'),
          signedAt: z.string().optional(),
        }),
      ),
      keyless: KEYLESS,
    })
    .meta({ id: 'SignatureStatus' }),
);

const PolicySettings = z.lazy(() =>
  z
    .object({
      mode: z
        .enum(TRUST_MODES as [TrustMode, ...TrustMode[]])
        .describe('off: nothing checked; audit: pulls allowed, violations recorded; enforce: pulls of unsigned manifests refused with 403'),
      inheritIndex: z.boolean().default(true).describe('a child manifest of a verified index counts as verified'),
    })
    .strict(),
);
const NewKey = z.lazy(() =>
  z
    .object({
      name: z
        .string()
        .min(1)
        .max(128)
        .regex(/^[A-Za-z0-9][A-Za-z0-9._ -]*$/, 'letters, digits, dot, dash, underscore and space'),
      pem: z
        .string()
        .min(1)
        .max(64 * 1024)
        .describe('a PEM public key (cosign.pub) or a PEM certificate (a Notation trust-store root)'),
    })
    .strict(),
);

function signatures(ctx: ApiContext): SignatureService {
  return ctx.features.signatures!;
}

function keyId(ctx: ApiContext): number {
  const raw = ctx.params.id!;
  if (!/^\d{1,15}$/.test(raw)) throw new RegistryError('NOT_FOUND', `project ${ctx.params.project} has no trusted key ${raw.slice(0, 32)}`);
  return Number(raw);
}

/** `project/repository` from the path (repository URL-encoded when it has slashes), if the caller may pull it (NOT_FOUND otherwise: no names leak). */
async function pullable(ctx: ApiContext): Promise<{ project: string; repository: string }> {
  const project = (await projectWith(ctx, 'read-project')).name;
  const repository = validateRepositoryName(`${project}/${ctx.params.repository!}`);
  const held = await ctx.auth.rules.permissions(ctx.identity, repository);
  if (!held.has('pull')) throw new RegistryError('NOT_FOUND', `repository ${repository} not found`);
  return { project, repository };
}

export const signatureRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/projects/:project/signature-policy',
    summary: "A project's signature trust policy: mode, index inheritance, trusted keys and certificates",
    response: SignaturePolicySchema,
    handler: async (ctx) => signatures(ctx).show((await projectWith(ctx, 'read-project')).name),
  },
  {
    method: 'PUT',
    path: '/projects/:project/signature-policy',
    summary: 'Set the signature trust policy: mode off | audit | enforce, inheritIndex (project-admin)',
    response: SignaturePolicySchema,
    body: PolicySettings,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      return signatures(ctx).setPolicy(ctx.actor, project.name, ctx.body as z.infer<typeof PolicySettings>);
    },
  },
  {
    method: 'POST',
    path: '/projects/:project/signature-policy/keys',
    summary: 'Trust a public key (cosign) or a certificate (Notation root), given as PEM (project-admin)',
    response: TrustedKeySchema,
    body: NewKey,
    status: 201,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      const { name, pem } = ctx.body as z.infer<typeof NewKey>;
      return signatures(ctx).addKey(ctx.actor, project.name, name, pem);
    },
  },
  {
    method: 'DELETE',
    path: '/projects/:project/signature-policy/keys/:id',
    summary: 'Stop trusting a key or certificate; verdicts it gave are dropped (project-admin)',
    status: 204,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      await signatures(ctx).deleteKey(ctx.actor, project.name, keyId(ctx));
    },
  },
  {
    method: 'GET',
    path: '/projects/:project/repositories/:repository/artifacts/:digest/signatures',
    summary:
      'Every signature of an artifact (cosign tag, cosign/bundle/Notation referrers), each valid with the key or certificate that verified it, or why not; repository without the project, URL-encoded',
    response: SignatureStatusSchema,
    handler: async (ctx) => {
      const { project, repository } = await pullable(ctx);
      return signatures(ctx).status(project, repository, ctx.params.digest!);
    },
  },
];
