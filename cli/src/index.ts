/** @faultline/cli: the `faultline` command, the local stack launcher and the API client. */
export { main } from "./main.ts";
export { startStack, freePort, serviceCommand, REPO_ROOT, type Stack, type StackOptions } from "./stack.ts";
export { startNatsServer, stopChild, type NatsServer } from "./nats-server.ts";
export { ApiClient, ApiError, type RunView } from "./client.ts";
export { formatResult, formatSideBySide } from "./summary.ts";
