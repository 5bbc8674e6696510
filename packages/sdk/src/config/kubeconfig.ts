/**
 * Kubeconfig generation (SPEC §6). Unlike k3s's own k3s.yaml, which names everything
 * `default`, every name here is the cluster's, so two kubeconfigs merge without collision
 * (`KUBECONFIG=a:b kubectl config view --merge --flatten`).
 */
import { stringify } from "yaml"

export interface KubeconfigInput {
  readonly clusterName: string
  readonly apiEndpoint: string
  readonly caCertPem: string
  readonly clientCertPem: string
  readonly clientKeyPem: string
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64")

export const renderKubeconfig = (input: KubeconfigInput): string => {
  const user = `${input.clusterName}-admin`
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: input.clusterName, cluster: { server: input.apiEndpoint, "certificate-authority-data": b64(input.caCertPem) } }],
    users: [{ name: user, user: { "client-certificate-data": b64(input.clientCertPem), "client-key-data": b64(input.clientKeyPem) } }],
    contexts: [{ name: input.clusterName, context: { cluster: input.clusterName, user } }],
    "current-context": input.clusterName,
    preferences: {}
  })
}

/** `https://[fd00::100]:6443` for IPv6, `https://10.0.0.1:6443` for IPv4. */
export const apiEndpointFor = (address: string, port = 6443) => `https://${address.includes(":") ? `[${address}]` : address}:${port}`
