# kubetx — the two commands that work on a fresh machine:
#   make demo   the main job: local control plane + operator + payment participants, running the payment example
#   make test   everything CI runs
.PHONY: setup testenv test unit integration e2e test-go demo build proto proto-check typecheck bench chaos image kind-e2e clean

setup:
	bash hack/setup.sh

testenv:
	bash hack/testenv.sh

test: setup
	bash hack/test.sh

unit: setup
	npx vitest run --project unit

# The Go SDK (sdk/go) against real PostgreSQL, MariaDB and SQLite; `make test` runs it too.
test-go: setup
	bash hack/test-go.sh

integration: setup
	npx vitest run --project integration

# The payment example end to end (test/e2e) against the local control plane; `make test` runs it too.
e2e: setup
	npx vitest run --project e2e

demo: setup
	npx tsx hack/demo.ts

build:
	npx tsc -p tsconfig.build.json

proto:
	bash hack/proto.sh

proto-check:
	bash hack/check-proto.sh

typecheck:
	npx tsc -p tsconfig.json --noEmit

# Benchmarks against the real control plane (etcd fsync on); under 10 minutes on 2 cores.
# Prints every figure and appends them to bench/RESULTS.md. One figure: npm run bench -- <scenario>
# A/B against any git ref, alternating rounds in one run: make bench BASELINE=<ref>
bench: setup
ifdef BASELINE
	KUBETX_BENCH_BASELINE=$(BASELINE) npx tsx bench/run.ts ceiling,ab
else
	npx tsx bench/run.ts all
endif

# Fault-injection suite, long version (operator/leader SIGKILLs, participant faults, kube-apiserver and etcd
# restarts, racing replicas, misbehaving participants); see docs/chaos.md. The short version runs in `make integration`.
chaos: setup
	npx tsx test/chaos/run.ts --long

# Container images: the operator (Dockerfile) and the payment example's participants
# (examples/payment/Dockerfile); both use the repository root as context (.dockerignore).
OPERATOR_IMAGE ?= ghcr.io/kubetx/kubetx:0.1.0
PAYMENT_IMAGE ?= kubetx-payment:0.1.0
image:
	@command -v docker >/dev/null 2>&1 || { echo "make image: docker not found (needs a Docker engine)" >&2; exit 2; }
	docker build -t $(OPERATOR_IMAGE) .
	docker build -f examples/payment/Dockerfile -t $(PAYMENT_IMAGE) .

# kind cluster + both images + the chart + examples/payment/k8s, then the e2e suite
# against it (hack/kind-e2e.sh; exits 2 without docker or kind). KEEP_CLUSTER=1 keeps the cluster.
kind-e2e:
	bash hack/kind-e2e.sh

clean:
	rm -rf dist .tmp sdk/typescript/dist
