# The two commands: `make up` runs the platform, `make test` runs every test.
STACK := deploy/dev/stack.sh

.PHONY: up down status logs test test-app check-deploy build bench-clients bench-embedder bench-retriever bench-gateway bench-cache bench-cost bench-governance bench-prompts bench-observability bench-flows bench-rag quality-rag

up:
	@$(STACK) up

down:
	@$(STACK) down

status:
	@$(STACK) status

logs:
	@$(STACK) logs

test:
	@$(STACK) test

test-app:
	@$(STACK) test-app

check-deploy:
	@deploy/dev/check-deploy.sh

build:
	@swift build

bench-clients:
	@deploy/dev/bench-clients.sh

bench-embedder:
	@deploy/dev/bench-embedder.sh

bench-retriever:
	@deploy/dev/bench-retriever.sh

bench-gateway:
	@deploy/dev/bench-gateway.sh

bench-cache:
	@deploy/dev/bench-cache.sh

bench-cost:
	@deploy/dev/bench-cost.sh

bench-governance:
	@deploy/dev/bench-governance.sh

bench-prompts:
	@deploy/dev/bench-prompts.sh

bench-observability:
	@deploy/dev/bench-observability.sh

bench-flows:
	@deploy/dev/bench-flows.sh

bench-rag:
	@deploy/dev/bench-rag.sh

quality-rag:
	@deploy/dev/bench-rag.sh quality
