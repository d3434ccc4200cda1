import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { svidId, type SpiffeId } from './spiffe.js';

/** The client-certificate keys of http.tls (src/config/schema.ts). */
export interface ClientCertificateConfig {
  clientcas?: string[];
  clientcrl?: string[];
  spiffe?: { trustdomains: string[] };
  clientcn: 'ignore' | 'user';
}

/**
 * A TLS connection's client certificate, as verified at its handshake (chain to
 * http.tls.clientcas, validity window, CRLs — OpenSSL's verification) and read once:
 * - `spiffe`: an X.509-SVID of a configured trust domain;
 * - `subject`: any other certificate, known by its subject CN;
 * - `refused`: presented but not acceptable; `reason` says why (shown to the client).
 */
export type ClientCertificate =
  | { state: 'spiffe'; spiffe: SpiffeId; fingerprint: string; notAfterMs: number }
  | { state: 'subject'; commonName: string; fingerprint: string; notAfterMs: number }
  | { state: 'refused'; reason: string; fingerprint: string };

/** Every CRL block of a PEM file: Node's `crl` option reads one CRL per entry. */
const CRL_BLOCK = /-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g;

/** OpenSSL's verification codes, as a person would put them. */
const REASONS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet',
  CERT_REVOKED: 'the certificate is revoked (http.tls.clientcrl)',
  UNABLE_TO_GET_CRL:
    "no CRL for an issuer of this certificate: it does not chain to http.tls.clientcas, or http.tls.clientcrl lacks that CA's CRL",
  CRL_HAS_EXPIRED: 'the CRL of its issuer has expired (renew http.tls.clientcrl)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'it does not chain to a CA of http.tls.clientcas (or the client did not send its intermediates)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'it does not chain to a CA of http.tls.clientcas (or the client did not send its intermediates)',
  SELF_SIGNED_CERT_IN_CHAIN: 'it chains to a CA that is not in http.tls.clientcas',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed and not in http.tls.clientcas',
  INVALID_PURPOSE: 'it is not meant for client authentication (extended key usage)',
};

/** How often the CRL files' modification times are looked at. */
const CRL_POLL_MS = 1000;

/**
 * Client-certificate authentication on the TLS listener: the secure-context options (the
 * CAs client certificates must chain to, the CRLs), the CRL files kept current without a
 * restart, and each connection's certificate read once at its handshake.
 *
 * The listener asks for a certificate but does not demand one (`requestCert`, not
 * `rejectUnauthorized`), so clients with passwords and tokens keep working; a certificate
 * that fails verification is reported as `refused` and the access policy answers 401 with
 * the reason, instead of treating the client as anonymous.
 *
 * A CRL applies to new handshakes; connections verified before it changed are closed once
 * their current request is answered (idle ones at once), so a revoked certificate cannot
 * carry on over keep-alive. A request that still arrives on such a connection is refused
 * with "reconnect" (`peer` reports it `refused`).
 */
export class ClientCertificateListener {
  private readonly certificates = new WeakMap<TLSSocket, ClientCertificate>();
  private readonly generations = new WeakMap<TLSSocket, number>();
  /** Connections that presented a certificate, with the response they are writing (if any). */
  private readonly live = new Map<TLSSocket, ServerResponse | null>();
  private generation = 0;
  private readonly trustDomains: Set<string>;
  private watched: string[] = [];

  constructor(
    private readonly config: ClientCertificateConfig,
    private readonly logger: Logger,
  ) {
    this.trustDomains = new Set(config.spiffe?.trustdomains ?? []);
  }

  /** The https server options: ask for a client certificate, verify it against the CAs and CRLs, never abort the handshake. */
  serverOptions(): { requestCert: true; rejectUnauthorized: false; ca: Buffer[]; crl?: string[] } {
    return { requestCert: true, rejectUnauthorized: false, ...this.contextOptions() };
  }

  /** The CAs and CRLs of a secure context, read from their files now (throws on an unreadable file or a CRL file without a CRL). */
  contextOptions(): { ca: Buffer[]; crl?: string[] } {
    const ca = (this.config.clientcas ?? []).map((file) => readFileSync(file));
    if (!this.config.clientcrl) return { ca };
    const crl = this.config.clientcrl.flatMap((file) => {
      const blocks = readFileSync(file, 'utf8').match(CRL_BLOCK);
      if (!blocks) throw new Error(`${file}: no PEM CRL (-----BEGIN X509 CRL-----) in http.tls.clientcrl`);
      return blocks;
    });
    return { ca, crl };
  }

  /**
   * Follows the server's connections and watches the CRL files: when one changes, `reload`
   * (the server's setSecureContext with contextOptions) runs and connections verified before
   * are closed. A reload that fails keeps the previous CRLs (logged).
   */
  attach(server: TlsServer, reload: () => void): void {
    server.on('secureConnection', (socket: TLSSocket) => this.connected(socket));
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const socket = request.socket as TLSSocket;
      if (!this.live.has(socket)) return;
      this.live.set(socket, response);
      response.once('finish', () => {
        if (this.live.get(socket) === response) this.live.set(socket, null);
        if ((this.generations.get(socket) ?? this.generation) !== this.generation) socket.end();
      });
    });
    this.watched = this.config.clientcrl ?? [];
    for (const file of this.watched) {
      watchFile(file, { interval: CRL_POLL_MS, persistent: false }, (now: Stats, before: Stats) => {
        if (now.mtimeMs === before.mtimeMs && now.size === before.size && now.ino === before.ino) return;
        this.crlChanged(reload, file);
      });
    }
  }

  /** Stops watching the CRL files. */
  close(): void {
    for (const file of this.watched) unwatchFile(file);
    this.watched = [];
  }

  /** Applies changed CRLs (also on SIGHUP through the server's TLS reload). */
  crlChanged(reload: () => void, file?: string): void {
    try {
      reload();
    } catch (err) {
      this.logger.error({ err, file }, 'could not reload http.tls.clientcrl; the previous CRLs stay in force');
      return;
    }
    this.generation++;
    let closed = 0;
    for (const [socket, response] of this.live) {
      if (response === null) {
        socket.destroy();
        this.live.delete(socket);
        closed++;
      } else {
        // Answered with Connection: close if its headers are not out yet; ended after it in any case.
        response.shouldKeepAlive = false;
      }
    }
    this.logger.info(
      { file, closed, busy: this.live.size },
      'reloaded the client certificate CRLs; connections verified before are closed',
    );
  }

  /** The client certificate of the connection `socket`, or null when it presented none (or is not TLS). */
  peer(socket: TLSSocket): ClientCertificate | null {
    const known = this.certificates.get(socket);
    if (!known) return null;
    if (known.state === 'refused') return known;
    if (this.generations.get(socket) !== this.generation) {
      return { state: 'refused', reason: 'the CRLs changed since this connection was verified; reconnect', fingerprint: known.fingerprint };
    }
    // A keep-alive connection may outlive its certificate.
    if (known.notAfterMs <= Date.now()) return { state: 'refused', reason: REASONS.CERT_HAS_EXPIRED!, fingerprint: known.fingerprint };
    return known;
  }

  private connected(socket: TLSSocket): void {
    const certificate = this.read(socket);
    if (!certificate) return;
    this.certificates.set(socket, certificate);
    this.generations.set(socket, this.generation);
    this.live.set(socket, null);
    socket.once('close', () => this.live.delete(socket));
  }

  private read(socket: TLSSocket): ClientCertificate | null {
    const x509 = socket.getPeerX509Certificate();
    if (!x509) return null;
    const fingerprint = x509.fingerprint256;
    const refused = (reason: string): ClientCertificate => ({ state: 'refused', reason, fingerprint });
    if (!socket.authorized) {
      const code = String(socket.authorizationError ?? 'UNKNOWN');
      return refused(`${REASONS[code] ?? 'it failed verification'} (${code})`);
    }
    const notAfterMs = Date.parse(x509.validTo);
    const svid = svidId(x509.subjectAltName);
    if (svid === null) {
      const commonName = /^CN=(.*)$/m.exec(x509.subject)?.[1] ?? '';
      return { state: 'subject', commonName, fingerprint, notAfterMs };
    }
    if ('error' in svid) return refused(`not a valid X.509-SVID: ${svid.error}`);
    if (x509.ca) return refused('not a valid X.509-SVID: a leaf SVID must not be a CA certificate');
    if (this.trustDomains.size === 0)
      return refused(`SPIFFE IDs are not accepted here (http.tls.spiffe.trustdomains is not set): ${svid.id}`);
    if (!this.trustDomains.has(svid.trustDomain))
      return refused(`trust domain "${svid.trustDomain}" of ${svid.id} is not one of http.tls.spiffe.trustdomains`);
    return { state: 'spiffe', spiffe: svid, fingerprint, notAfterMs };
  }
}
