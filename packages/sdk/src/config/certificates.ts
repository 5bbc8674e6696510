/**
 * The cluster CA and the admin client certificate, made with @peculiar/x509 on Node's
 * WebCrypto: ECDSA P-256, as k3s itself uses. The CA is installed on the cluster's servers
 * (k3s adopts a CA placed in server/tls before its first start), so kubeconfigs signed here
 * are accepted by the real API server.
 */
import "reflect-metadata" // @peculiar/x509's dependency injection needs the Reflect metadata API
import { webcrypto } from "node:crypto"
import * as x509 from "@peculiar/x509"

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const
const DAY_MS = 86_400_000

export interface KeyPairPem {
  readonly certPem: string
  readonly keyPem: string
}

const toPem = (der: ArrayBuffer, label: string) => {
  const base64 = Buffer.from(der).toString("base64")
  return `-----BEGIN ${label}-----\n${base64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`
}

const randomSerial = () => {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16))
  bytes[0] = bytes[0]! & 0x7f // positive
  return Buffer.from(bytes).toString("hex")
}

const importPrivateKey = (pem: string) => {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64")
  return webcrypto.subtle.importKey("pkcs8", der, algorithm, true, ["sign"])
}

/** A self-signed CA for one cluster, valid ten years. */
export const createClusterCa = async (clusterName: string, now: Date): Promise<KeyPairPem> => {
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=fleetplane-${clusterName}-ca, O=Fleetplane`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 3650 * DAY_MS),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
    ]
  })
  return { certPem: cert.toString("pem") + "\n", keyPem: toPem(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY") }
}

export const ONE_YEAR_MS = 365 * DAY_MS

/** A name made safe for a certificate subject: a `,` or `=` in an API key's name must not add a field. */
export const subjectSafe = (text: string) => text.replace(/[^A-Za-z0-9._:@-]/g, "-").slice(0, 64)

/**
 * A client certificate signed by the cluster CA. Kubernetes reads the user from the CN and
 * the groups from O: `system:masters` makes it a cluster admin. Valid `validityMs` (one year
 * by default).
 */
export const issueClientCertificate = async (ca: KeyPairPem, commonName: string, organization: string, now: Date, validityMs: number = ONE_YEAR_MS): Promise<KeyPairPem> => {
  const caCert = new x509.X509Certificate(ca.certPem)
  const caKey = await importPrivateKey(ca.keyPem)
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${subjectSafe(commonName)}, O=${subjectSafe(organization)}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + validityMs),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false)
    ]
  })
  return { certPem: cert.toString("pem") + "\n", keyPem: toPem(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY") }
}

/** When a certificate stops being valid (ms since the epoch). */
export const certificateExpiry = (certPem: string): number => new x509.X509Certificate(certPem).notAfter.getTime()
