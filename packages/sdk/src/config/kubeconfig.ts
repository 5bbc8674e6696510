/**
 * Kubeconfig generation (SPEC §6). Unlike k3s's own k3s.yaml, which names everything
 * `default`, the context is named after the cluster (`kubectl config use-context k3s-prod`,
 * as the runbook does), and the cluster and user entries after its id, which no other
 * cluster of any account or site shares — so kubeconfigs merge without collision
 * (`KUBECONFIG=a:b kubectl config view --merge --flatten`). `contextName` overrides the context's
 * name (two accounts' clusters may share a name).
 */
import { stringify } from "yaml"

export interface KubeconfigInput {
  readonly clusterName: string
  /** Unique across accounts and sites: the cluster and user entries are named after it. */
  readonly clusterId: string
  readonly contextName?: string
  readonly apiEndpoint: string
  readonly caCertPem: string
  readonly clientCertPem: string
  readonly clientKeyPem: string
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64")

export const renderKubeconfig = (input: KubeconfigInput): string => {
  const context = input.contextName ?? input.clusterName
  const entry = `${input.clusterName}-${input.clusterId}`
  const user = `${entry}-admin`
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: entry, cluster: { server: input.apiEndpoint, "certificate-authority-data": b64(input.caCertPem) } }],
    users: [{ name: user, user: { "client-certificate-data": b64(input.clientCertPem), "client-key-data": b64(input.clientKeyPem) } }],
    contexts: [{ name: context, context: { cluster: entry, user } }],
    "current-context": context,
    preferences: {}
  })
}

/** `https://[fd00::100]:6443` for IPv6, `https://10.0.0.1:6443` for IPv4. */
export const apiEndpointFor = (address: string, port = 6443) => `https://${address.includes(":") ? `[${address}]` : address}:${port}`
