import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A throw-away PKI made with the openssl CLI at test time: a root CA, an intermediate CA
 * under it (each an `openssl ca` database, so certificates can be revoked and CRLs issued),
 * leaf certificates (SPIFFE X.509-SVIDs with a URI SAN, or plain client certificates), and
 * a self-signed server certificate for 127.0.0.1.
 */
export class TestPki {
  private constructor(
    readonly dir: string,
    readonly name: string,
  ) {}

  /** The root CA's certificate (what http.tls.clientcas names). */
  get rootCert(): string {
    return path.join(this.dir, 'root', 'ca.crt');
  }

  get intermediateCert(): string {
    return path.join(this.dir, 'intermediate', 'ca.crt');
  }

  /** Creates the root and the intermediate CA under `dir/<name>`. */
  static create(parent: string, name = 'pki'): TestPki {
    const pki = new TestPki(path.join(parent, name), name);
    const root = pki.caDir('root');
    openssl([
      'req',
      '-x509',
      ...EC_KEY,
      '-nodes',
      '-keyout',
      path.join(root, 'ca.key'),
      '-out',
      path.join(root, 'ca.crt'),
      '-days',
      '2',
      '-subj',
      `/CN=${name} root CA`,
      '-addext',
      'basicConstraints=critical,CA:true',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const intermediate = pki.caDir('intermediate');
    openssl([
      'req',
      '-new',
      ...EC_KEY,
      '-nodes',
      '-keyout',
      path.join(intermediate, 'ca.key'),
      '-out',
      path.join(intermediate, 'ca.csr'),
      '-subj',
      `/CN=${name} intermediate CA`,
    ]);
    openssl([
      'ca',
      '-config',
      path.join(root, 'ca.cnf'),
      '-batch',
      '-notext',
      '-extensions',
      'v3_ca',
      '-in',
      path.join(intermediate, 'ca.csr'),
      '-out',
      path.join(intermediate, 'ca.crt'),
    ]);
    return pki;
  }

  /**
   * A leaf certificate signed by the intermediate (default) or the root. `uris` become URI
   * SANs; `start`/`end` (openssl's YYMMDDHHMMSSZ) set the validity window. Returns the paths of
   * the certificate, its key, and `chain` (leaf then intermediate: what a client presents).
   */
  issue(
    file: string,
    options: { cn?: string; uris?: string[]; ca?: boolean; by?: 'root' | 'intermediate'; start?: string; end?: string } = {},
  ): LeafFiles {
    const by = options.by ?? 'intermediate';
    const caDir = path.join(this.dir, by);
    const base = path.join(this.dir, 'leaves', file);
    mkdirSync(path.dirname(base), { recursive: true });
    openssl(['req', '-new', ...EC_KEY, '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${options.cn ?? file}`]);
    const ext = [
      `basicConstraints=critical,CA:${options.ca ? 'true' : 'false'}`,
      options.ca ? 'keyUsage=critical,keyCertSign,cRLSign' : 'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth,serverAuth',
      ...(options.uris?.length ? [`subjectAltName=${options.uris.map((u) => `URI:${u}`).join(',')}`] : []),
    ];
    writeFileSync(`${base}.ext`, `${ext.join('\n')}\n`);
    const dates = [...(options.start ? ['-startdate', options.start] : []), ...(options.end ? ['-enddate', options.end] : [])];
    openssl([
      'ca',
      '-config',
      path.join(caDir, 'ca.cnf'),
      '-batch',
      '-notext',
      '-extfile',
      `${base}.ext`,
      ...dates,
      '-in',
      `${base}.csr`,
      '-out',
      `${base}.crt`,
    ]);
    const chain = `${base}.chain.crt`;
    const issuers = by === 'intermediate' ? [readFileSync(this.intermediateCert, 'utf8')] : [];
    writeFileSync(chain, [readFileSync(`${base}.crt`, 'utf8'), ...issuers].join(''));
    return { cert: `${base}.crt`, key: `${base}.key`, chain };
  }

  /** Revokes a leaf issued by `by` (recorded in that CA's database; the next `crl()` lists it). */
  revoke(leaf: LeafFiles, by: 'root' | 'intermediate' = 'intermediate'): void {
    openssl(['ca', '-config', path.join(this.dir, by, 'ca.cnf'), '-revoke', leaf.cert]);
  }

  /** Both CAs' current CRLs, concatenated PEM (what http.tls.clientcrl names), written to `file`. */
  crl(file: string): string {
    const parts = (['root', 'intermediate'] as const).map((ca) => {
      const out = path.join(this.dir, ca, 'ca.crl');
      openssl(['ca', '-config', path.join(this.dir, ca, 'ca.cnf'), '-gencrl', '-out', out]);
      return readFileSync(out, 'utf8');
    });
    writeFileSync(file, parts.join(''));
    return file;
  }

  private caDir(ca: 'root' | 'intermediate'): string {
    const dir = path.join(this.dir, ca);
    mkdirSync(path.join(dir, 'newcerts'), { recursive: true });
    writeFileSync(path.join(dir, 'index.txt'), '');
    writeFileSync(path.join(dir, 'serial'), ca === 'root' ? '1000\n' : '2000\n');
    writeFileSync(path.join(dir, 'crlnumber'), '01\n');
    writeFileSync(path.join(dir, 'ca.cnf'), caConfig(dir));
    return dir;
  }
}

export interface LeafFiles {
  cert: string;
  key: string;
  chain: string;
}

/** A self-signed server certificate for 127.0.0.1. */
export function serverCertificate(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  openssl([
    'req',
    '-x509',
    ...EC_KEY,
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    '/CN=berth-test-server',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  return { cert, key };
}

/** openssl's date format (YYMMDDHHMMSSZ) for `date` + `offsetMs`. */
export function opensslDate(offsetMs: number, now = Date.now()): string {
  return new Date(now + offsetMs).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function caConfig(dir: string): string {
  return `[ca]
default_ca = CA_default
[CA_default]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.crt
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 1
default_crl_days = 1
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = optional
[v3_ca]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;
}
