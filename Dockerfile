# One image for all five Faultline services (vcpu, mmu, pager, signals, api) and the CLI.
# There is no build step: the TypeScript sources run through tsx, which the @faultline/cli
# workspace depends on at run time (npm hoists it to /app/node_modules).
#
#   docker build -t faultline:local .
#   docker run --rm -e NATS_URL=nats://host:4222 faultline:local node --import tsx services/vcpu/src/main.ts
#
# docker-compose.yml builds this image once and picks the service with `command:`.
FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependency layer: the root manifest, the lockfile and every workspace's package.json (one COPY per
# workspace: a `services/*/package.json` glob would flatten the directories). cli/bin is copied too
# because npm links the `faultline` bin while installing the workspace.
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY services/vcpu/package.json services/vcpu/
COPY services/mmu/package.json services/mmu/
COPY services/pager/package.json services/pager/
COPY services/signals/package.json services/signals/
COPY services/api/package.json services/api/
COPY cli/package.json cli/
COPY cli/bin cli/bin
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Sources.
COPY shared/src shared/src
COPY services/vcpu/src services/vcpu/src
COPY services/mmu/src services/mmu/src
COPY services/pager/src services/pager/src
COPY services/signals/src services/signals/src
COPY services/api/src services/api/src
COPY cli/src cli/src
COPY scenarios scenarios

USER node
EXPOSE 8080
CMD ["node", "--import", "tsx", "services/api/src/main.ts"]
