import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * A self-signed P-256 certificate valid for a day, made by openssl: `<dir>/<name>.crt` and
 * `<dir>/<name>.key` (PEM), with CN=`cn` (default `name`) and, unless `ip` is null, a
 * subjectAltName for that address (default 127.0.0.1, so TLS clients accept it for a local server).
 */
export function selfSignedCertificate(
  dir: string,
  name: string,
  options: { cn?: string; ip?: string | null } = {},
): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const ip = options.ip === undefined ? '127.0.0.1' : options.ip;
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${options.cn ?? name}`],
      ...(ip === null ? [] : ['-addext', `subjectAltName=IP:${ip}`]),
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}
