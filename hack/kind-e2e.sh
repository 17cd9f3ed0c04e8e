#!/usr/bin/env bash
# The payment example end to end in a kind cluster, with the real images:
#
#   1. checks docker (with a running engine) and kind; exits 2 if one is missing
#   2. hack/setup.sh (npm ci + the testenv: its kubectl and helm are used here,
#      and the e2e suite's global setup applies crds/ with that kubectl)
#   3. creates the kind cluster $KIND_CLUSTER_NAME (default kubetx-e2e), or
#      reuses it if it already exists, with its kubeconfig in .tmp/
#   4. make image (operator + payment images), kind load docker-image of both
#   5. helm install charts/kubetx with the image overridden; waits for a Lease holder
#   6. applies examples/payment/k8s (namespace shop, the four participants),
#      waits for the rollouts, applies examples/payment/manifests/pay-order-
#      {success,refused}.yaml and waits for Committed / Aborted
#   7. runs the e2e suite (test/e2e) with KUBETX_E2E_TARGET=cluster
#   8. deletes the cluster it created, unless KEEP_CLUSTER=1
#
# Env: KIND_CLUSTER_NAME, KIND_NODE_IMAGE (kind create --image), KEEP_CLUSTER=1,
# OPERATOR_IMAGE (default ghcr.io/kubetx/kubetx:0.1.0, the chart's default),
# PAYMENT_IMAGE (default kubetx-payment:0.1.0, the one examples/payment/k8s names).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cluster=${KIND_CLUSTER_NAME:-kubetx-e2e}
operator_image=${OPERATOR_IMAGE:-ghcr.io/kubetx/kubetx:0.1.0}
payment_image=${PAYMENT_IMAGE:-kubetx-payment:0.1.0}
release_ns=kubetx-system
ns=shop # the namespace examples/payment/k8s and the example transactions use

log() { printf '[kind-e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
missing() { printf 'kind-e2e: %s\n' "$*" >&2; exit 2; }

command -v docker >/dev/null 2>&1 || missing "docker not found: this needs Docker (or a docker-compatible CLI) with a running engine"
docker info >/dev/null 2>&1 || missing "docker is installed but no engine answers (docker info failed)"
command -v kind >/dev/null 2>&1 || missing "kind not found: install it from https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
# kind-loaded images are only used with imagePullPolicy IfNotPresent: a tag is needed, and not "latest".
for img in "$operator_image" "$payment_image"; do
  tag=${img##*:}
  if [ "$tag" = "$img" ] || [[ $tag == */* ]] || [ "$tag" = latest ]; then
    printf 'kind-e2e: image %s: give it a tag other than latest\n' "$img" >&2; exit 1
  fi
done

log "setup (npm ci, testenv)"
bash hack/setup.sh
bin=$(bash hack/testenv.sh --path)
kubectl_bin=$bin/kubectl; [ -x "$kubectl_bin" ] || kubectl_bin=$(command -v kubectl)
helm_bin=$bin/helm; [ -x "$helm_bin" ] || helm_bin=$(command -v helm)

mkdir -p .tmp
kubeconfig=$PWD/.tmp/kind-$cluster.kubeconfig
k() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }

created=0
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "reusing the existing kind cluster $cluster (it will not be deleted)"
  kind get kubeconfig --name "$cluster" >"$kubeconfig"
else
  log "creating kind cluster $cluster"
  kind create cluster --name "$cluster" --kubeconfig "$kubeconfig" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
  created=1
fi

finish() {
  rc=$?
  if [ "$rc" != 0 ]; then
    log "failed ($rc); state of the cluster:"
    k get pods -A -o wide >&2 || true
    k -n "$release_ns" logs -l app.kubernetes.io/component=operator --tail=50 --prefix >&2 || true
    k -n "$ns" get dtx -o wide >&2 || true
  fi
  if [ "$created" = 1 ] && [ "${KEEP_CLUSTER:-}" != 1 ]; then
    log "deleting kind cluster $cluster (KEEP_CLUSTER=1 keeps it)"
    kind delete cluster --name "$cluster" || true
  else
    log "cluster $cluster kept: KUBECONFIG=$kubeconfig"
  fi
  exit "$rc"
}
trap finish EXIT

log "building $operator_image and $payment_image"
make --no-print-directory image OPERATOR_IMAGE="$operator_image" PAYMENT_IMAGE="$payment_image"
kind load docker-image --name "$cluster" "$operator_image" "$payment_image"

log "helm install charts/kubetx ($helm_bin)"
"$helm_bin" --kubeconfig "$kubeconfig" upgrade --install kubetx charts/kubetx \
  --namespace "$release_ns" --create-namespace \
  --set image.repository="${operator_image%:*}" --set image.tag="${operator_image##*:}" --set image.pullPolicy=IfNotPresent
k -n "$release_ns" rollout status deploy/kubetx --timeout=180s
# Ready does not mean leading (a standby waiting for the Lease is Ready): wait for a Lease holder.
leader() { k -n "$release_ns" get lease kubetx-leader -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
for _ in $(seq 90); do [ -n "$(leader)" ] && break; sleep 2; done
[ -n "$(leader)" ] || { log "no operator replica took the Lease kubetx-leader in 180 s"; exit 1; }
log "leader: $(leader)"

log "deploying examples/payment/k8s"
k apply -f examples/payment/k8s/namespace.yaml
sed "s|image: kubetx-payment:0.1.0|image: $payment_image|" examples/payment/k8s/payment.yaml | k apply -f -
for s in order inventory credit warehouse; do k -n "$ns" rollout status "deploy/$s" --timeout=180s; done

log "the example transactions: examples/payment/manifests/pay-order-{success,refused}.yaml"
k apply -f examples/payment/manifests/pay-order-success.yaml -f examples/payment/manifests/pay-order-refused.yaml
k -n "$ns" wait dtx/pay-order-1001 --for=jsonpath='{.status.phase}'=Committed --timeout=120s
k -n "$ns" wait dtx/pay-order-1002 --for=jsonpath='{.status.phase}'=Aborted --timeout=120s
k -n "$ns" get dtx -o wide >&2

log "e2e suite against the cluster"
KUBETX_E2E_KUBECONFIG=$kubeconfig KUBETX_E2E_TARGET=cluster KUBETX_E2E_NAMESPACE=$ns \
  npx --no-install vitest run --project e2e
