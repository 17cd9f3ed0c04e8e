# kubetx — the two commands that work on a fresh machine:
#   make demo   the main job: local control plane + operator + payment participants, running the payment example
#   make test   everything CI runs
.PHONY: setup testenv test unit integration demo build proto proto-check typecheck bench chaos clean

setup:
	bash hack/setup.sh

testenv:
	bash hack/testenv.sh

test: setup
	bash hack/test.sh

unit: setup
	npx vitest run --project unit

integration: setup
	npx vitest run --project integration

demo: setup
	npx tsx hack/demo.ts

build:
	npx tsc -p tsconfig.build.json

proto:
	npx buf lint && npx buf generate

proto-check:
	bash hack/check-proto.sh

typecheck:
	npx tsc -p tsconfig.json --noEmit

# Benchmarks against the real control plane (etcd fsync on); under 10 minutes on 2 cores.
# Prints every figure and appends them to bench/RESULTS.md. One figure: npm run bench -- <scenario>
bench: setup
	npx tsx bench/run.ts all

# Fault-injection suite, long version (operator/leader SIGKILLs, participant faults, kube-apiserver and etcd
# restarts, racing replicas, misbehaving participants); see docs/chaos.md. The short version runs in `make integration`.
chaos: setup
	npx tsx test/chaos/run.ts --long

clean:
	rm -rf dist .tmp
