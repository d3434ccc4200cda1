import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { render } from '../../src/sbom/formats.js';
import type { Inventory } from '../../src/sbom/model.js';
import { inventoryOf, layerOf } from './support.js';

/**
 * The SBOMs Berth writes, validated against the published schemas.
 *
 * CycloneDX 1.6: against the official `bom-1.6.schema.json` (with the SPDX licence-id, JSF and
 * cryptography-defs schemas it references), as shipped in @cyclonedx/cyclonedx-library's
 * `res/schema/`. The library's own `Validation.JsonStrictValidator` needs the optional
 * dependencies ajv, ajv-formats and ajv-formats-draft2019; the last is not installed, so when
 * the strict validator reports it missing, the same ajv set-up the library uses
 * (`_optPlug.node/__jsonValidators/ajv.js`: draft-07, ajv-formats, `iri-reference` accepted as
 * is, `idn-email` from ajv-formats-draft2019) is built here from ajv and ajv-formats (installed
 * for fastify), with `idn-email` checked by a plain `local@domain` rule instead — the only
 * difference, and a field Berth never writes. Either way the document is validated; which
 * validator ran is printed as a test diagnostic.
 *
 * SPDX 2.3: no installed package ships the SPDX 2.3 JSON schema (spdx/spdx-spec
 * `schemas/spdx-schema.json`), so the document is checked against the schema's constraints
 * on what Berth writes, transcribed below from the spec (required fields, enums, id patterns),
 * plus what a schema cannot say: every relationship names an element of the document, every
 * licence is a listed SPDX id (the licence list CycloneDX ships) or a LicenseRef defined in
 * `hasExtractedLicensingInfos`.
 */

const require = createRequire(import.meta.url);
const SCHEMAS = path.join(path.dirname(require.resolve('@cyclonedx/cyclonedx-library/package.json')), 'res/schema');
const readSchema = (file: string) => JSON.parse(readFileSync(path.join(SCHEMAS, file), 'utf8')) as Record<string, unknown>;
// ajv-formats is CommonJS with `exports.default`: under ESM the default import is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv,
) => Ajv;

const subject = { repository: 'team/app', digest: `sha256:${'a'.repeat(64)}`, registryHost: 'registry.example.com' };

/** The library's ajv options and schema map (jsonValidator.node.js, __jsonValidators/ajv.js). */
function cycloneDxAjv(): ValidateFunction {
  const ajv = new Ajv({
    useDefaults: false,
    strict: false,
    strictSchema: false,
    addUsedSchema: false,
    schemas: {
      'http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json': readSchema('spdx.SNAPSHOT.schema.json'),
      'http://cyclonedx.org/schema/cryptography-defs.SNAPSHOT.schema.json': readSchema('cryptography-defs.SNAPSHOT.schema.json'),
      'http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json': readSchema('jsf-0.82.SNAPSHOT.schema.json'),
    },
  });
  addFormats(ajv);
  ajv.addFormat('idn-email', /^[^\s@]+@[^\s@]+$/u);
  ajv.addFormat('iri-reference', true);
  return ajv.compile(readSchema('bom-1.6.SNAPSHOT.schema.json'));
}

/** Validates with the library's strict validator when its optional dependencies are there, else with cycloneDxAjv(); the errors (null: valid) and which ran. */
async function validateCycloneDx(json: string, fallback: ValidateFunction): Promise<{ errors: unknown; validator: string }> {
  try {
    return {
      errors: await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(json),
      validator: 'Validation.JsonStrictValidator',
    };
  } catch (err) {
    if (!(err instanceof Validation.MissingOptionalDependencyError)) throw err;
    return {
      errors: fallback(JSON.parse(json)) ? null : fallback.errors,
      validator: `ajv with the library's schema set-up (strict validator unavailable: ${err.message})`,
    };
  }
}

const SPDX_ID = '^SPDXRef-[A-Za-z0-9.-]+$';
const DATE = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$';
/** The SPDX 2.3 JSON schema's constraints on the fields Berth writes (spdx-spec support/2.3, schemas/spdx-schema.json and chapters 6–11). */
const SPDX_23 = {
  type: 'object',
  required: ['spdxVersion', 'dataLicense', 'SPDXID', 'name', 'documentNamespace', 'creationInfo'],
  properties: {
    spdxVersion: { const: 'SPDX-2.3' },
    dataLicense: { const: 'CC0-1.0' },
    SPDXID: { const: 'SPDXRef-DOCUMENT' },
    name: { type: 'string', minLength: 1 },
    documentNamespace: { type: 'string', format: 'uri', not: { pattern: '#' } },
    documentDescribes: { type: 'array', items: { type: 'string', pattern: SPDX_ID } },
    creationInfo: {
      type: 'object',
      required: ['created', 'creators'],
      properties: {
        created: { type: 'string', pattern: DATE },
        creators: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^(Tool|Organization|Person): .+' } },
      },
    },
    packages: {
      type: 'array',
      items: {
        type: 'object',
        required: ['SPDXID', 'name', 'downloadLocation'],
        properties: {
          SPDXID: { type: 'string', pattern: SPDX_ID },
          name: { type: 'string', minLength: 1 },
          versionInfo: { type: 'string' },
          downloadLocation: { type: 'string', minLength: 1 },
          filesAnalyzed: { type: 'boolean' },
          licenseConcluded: { type: 'string' },
          licenseDeclared: { type: 'string' },
          copyrightText: { type: 'string' },
          sourceInfo: { type: 'string' },
          comment: { type: 'string' },
          primaryPackagePurpose: {
            enum: [
              'APPLICATION',
              'FRAMEWORK',
              'LIBRARY',
              'CONTAINER',
              'OPERATING-SYSTEM',
              'DEVICE',
              'FIRMWARE',
              'SOURCE',
              'ARCHIVE',
              'FILE',
              'INSTALL',
              'OTHER',
            ],
          },
          externalRefs: {
            type: 'array',
            items: {
              type: 'object',
              required: ['referenceCategory', 'referenceType', 'referenceLocator'],
              properties: {
                referenceCategory: { enum: ['OTHER', 'PERSISTENT-ID', 'PERSISTENT_ID', 'SECURITY', 'PACKAGE-MANAGER', 'PACKAGE_MANAGER'] },
                referenceType: { type: 'string' },
                referenceLocator: { type: 'string', pattern: '^\\S+$' },
              },
            },
          },
          annotations: {
            type: 'array',
            items: {
              type: 'object',
              required: ['annotationDate', 'annotationType', 'annotator', 'comment'],
              properties: {
                annotationDate: { type: 'string', pattern: DATE },
                annotationType: { enum: ['OTHER', 'REVIEW'] },
                annotator: { type: 'string', pattern: '^(Tool|Organization|Person): .+' },
                comment: { type: 'string' },
              },
            },
          },
        },
        // Since 2.3 a package without file analysis must not carry a verification code.
        if: { properties: { filesAnalyzed: { const: false } }, required: ['filesAnalyzed'] },
        then: { not: { required: ['packageVerificationCode'] } },
      },
    },
    relationships: {
      type: 'array',
      items: {
        type: 'object',
        required: ['spdxElementId', 'relationshipType', 'relatedSpdxElement'],
        properties: {
          spdxElementId: { type: 'string', pattern: SPDX_ID },
          relationshipType: {
            enum: ['DESCRIBES', 'DESCRIBED_BY', 'CONTAINS', 'CONTAINED_BY', 'DEPENDS_ON', 'DEPENDENCY_OF', 'GENERATED_FROM', 'OTHER'],
          },
          relatedSpdxElement: { type: 'string' },
        },
      },
    },
    hasExtractedLicensingInfos: {
      type: 'array',
      items: {
        type: 'object',
        required: ['licenseId', 'extractedText'],
        properties: {
          licenseId: { type: 'string', pattern: '^LicenseRef-[A-Za-z0-9.-]+$' },
          extractedText: { type: 'string', minLength: 1 },
          name: { type: 'string' },
        },
      },
    },
  },
};

function spdxValidator(): ValidateFunction {
  const ajv = new Ajv({ strict: true, strictRequired: false, allErrors: true });
  addFormats(ajv);
  return ajv.compile(SPDX_23);
}

/** What a schema cannot say: references resolve, licences are listed ids or defined LicenseRefs. */
function spdxReferenceProblems(doc: {
  SPDXID: string;
  packages: { SPDXID: string; licenseDeclared?: string; licenseConcluded?: string }[];
  relationships: { spdxElementId: string; relatedSpdxElement: string }[];
  documentDescribes?: string[];
  hasExtractedLicensingInfos?: { licenseId: string }[];
}): string[] {
  const listed = new Set((readSchema('spdx.SNAPSHOT.schema.json') as { enum: string[] }).enum);
  const ids = new Set([doc.SPDXID, ...doc.packages.map((p) => p.SPDXID)]);
  const refs = new Set((doc.hasExtractedLicensingInfos ?? []).map((l) => l.licenseId));
  const problems: string[] = [];
  if (ids.size !== doc.packages.length + 1) problems.push('SPDXIDs are not unique');
  for (const r of doc.relationships)
    for (const id of [r.spdxElementId, r.relatedSpdxElement])
      if (!ids.has(id)) problems.push(`relationship names ${id}, not in the document`);
  for (const id of doc.documentDescribes ?? []) if (!ids.has(id)) problems.push(`documentDescribes names ${id}, not in the document`);
  for (const p of doc.packages) {
    for (const license of [p.licenseDeclared, p.licenseConcluded]) {
      if (license === undefined || license === 'NOASSERTION' || license === 'NONE') continue;
      if (license.startsWith('LicenseRef-') ? !refs.has(license) : !listed.has(license))
        problems.push(`${p.SPDXID}: licence ${license} is neither a listed SPDX id nor a defined LicenseRef`);
    }
  }
  return problems;
}

function errorsText(errors: unknown): string {
  return JSON.stringify((errors as ErrorObject[] | null)?.slice(0, 5) ?? errors, null, 1);
}

describe('SBOM documents against their schemas', () => {
  let inv: Inventory;
  let cdxFallback: ValidateFunction;
  let spdx: ValidateFunction;

  before(async () => {
    cdxFallback = cycloneDxAjv();
    spdx = spdxValidator();
    // This machine's own dpkg database (hundreds of real packages), plus every other kind of package and licence Berth reads.
    inv = await inventoryOf([
      await layerOf([
        { path: 'etc/os-release', data: readFileSync('/etc/os-release') },
        { path: 'var/lib/dpkg/status', data: readFileSync('/var/lib/dpkg/status') },
        {
          path: 'lib/apk/db/installed',
          data: 'P:libcrypto3\nV:3.1.4-r5\no:openssl\nL:Apache-2.0\n\nP:musl\nV:1.2.4-r2\no:musl\nL:MIT AND BSD-2-Clause\n',
        },
        {
          path: 'app/package-lock.json',
          data: JSON.stringify({
            name: 'app',
            lockfileVersion: 3,
            packages: {
              '': { name: 'app' },
              'node_modules/lodash': { version: '4.17.20', license: 'MIT' },
              'node_modules/@scope/pkg': { version: '1.0.0', license: 'Some custom licence text' },
            },
          }),
        },
        {
          path: 'usr/lib/python3/dist-packages/Django-4.2.6.dist-info/METADATA',
          data: 'Metadata-Version: 2.1\nName: Django\nVersion: 4.2.6\nLicense: BSD-3-Clause\n',
        },
        {
          path: 'src/Cargo.lock',
          data: 'version = 3\n\n[[package]]\nname = "smallvec"\nversion = "1.6.0"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\n',
        },
      ]),
    ]);
    assert.ok(inv.packages.length > 50, `a real package list (${inv.packages.length})`);
  });

  it('CycloneDX 1.6 JSON is valid against the official bom-1.6 schema', async (t) => {
    const json = render('cyclonedx', inv, subject).toString();
    const { errors, validator } = await validateCycloneDx(json, cdxFallback);
    t.diagnostic(`validated with ${validator}`);
    assert.equal(errors, null, errorsText(errors));
    const doc = JSON.parse(json) as { specVersion: string; components: { type: string }[] };
    assert.equal(doc.specVersion, '1.6');
    assert.equal(doc.components.filter((c) => c.type === 'library').length, inv.packages.length);
  });

  it('the CycloneDX validation can fail: a broken document is refused', async () => {
    const doc = JSON.parse(render('cyclonedx', inv, subject).toString()) as { components: { type: string }[]; serialNumber: string };
    doc.components[0]!.type = 'not-a-type';
    doc.serialNumber = 'not-a-urn';
    const { errors } = await validateCycloneDx(JSON.stringify(doc), cdxFallback);
    assert.ok(Array.isArray(errors) && errors.length > 0, 'refused');
    const paths = (errors as ErrorObject[]).map((e) => e.instancePath);
    assert.ok(paths.includes('/serialNumber'), JSON.stringify(paths));
  });

  it('SPDX 2.3 JSON meets the schema constraints on what Berth writes; references and licences resolve', () => {
    const doc = JSON.parse(render('spdx', inv, subject).toString()) as Parameters<typeof spdxReferenceProblems>[0];
    assert.ok(spdx(doc), errorsText(spdx.errors));
    assert.deepEqual(spdxReferenceProblems(doc), []);
    assert.ok(
      (doc.hasExtractedLicensingInfos ?? []).some((l) => l.licenseId.startsWith('LicenseRef-')),
      'the custom licence is a defined LicenseRef',
    );
  });

  it('the SPDX checks can fail: a broken document is refused', () => {
    const doc = JSON.parse(render('spdx', inv, subject).toString()) as Parameters<typeof spdxReferenceProblems>[0] & {
      spdxVersion: string;
      packages: { SPDXID: string; licenseDeclared?: string }[];
    };
    doc.spdxVersion = 'SPDX-2.2';
    doc.packages[1]!.SPDXID = 'Package_1';
    assert.equal(spdx(doc), false);
    const fixed = JSON.parse(render('spdx', inv, subject).toString()) as Parameters<typeof spdxReferenceProblems>[0];
    fixed.packages[1]!.licenseDeclared = 'Not-A-Listed-Id';
    fixed.relationships.push({ spdxElementId: 'SPDXRef-Image', relatedSpdxElement: 'SPDXRef-Nowhere' });
    assert.equal(spdxReferenceProblems(fixed).length, 2);
  });
});
