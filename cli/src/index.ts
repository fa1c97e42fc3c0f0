/** @faultline/cli: the `faultline` command, the local stack launcher and the API client. */
export { main } from "./main.ts";
export { startStack, freePort, serviceCommand, REPO_ROOT, StackStartError, type Stack, type StackOptions } from "./stack.ts";
export { startNatsServer, stopChild, type NatsServer, type NatsServerOptions } from "./nats-server.ts";
export { Supervisor, DEFAULT_POLICY, type SupervisorPolicy, type RestartInfo, type GiveUp } from "./supervisor.ts";
export { withStack, trapSignals, Interrupted, ServiceGaveUp, type CommandContext } from "./lifecycle.ts";
export { ApiClient, ApiError, ApiRequestError, isTerminal, TERMINAL_STATUSES, type RunView, type RunStatus, type ApiClientOptions } from "./client.ts";
export { formatResult, formatSideBySide } from "./summary.ts";
