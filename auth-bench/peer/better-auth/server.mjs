// Minimal better-auth server used as a peer by auth-bench.
//
// Routes:
//   /api/auth/*      better-auth's own handler (sign-up, sign-in/email, get-session, ...)
//   GET /protected   auth.api.getSession({ headers }) -> 401 if null, else 200 {"user_id": ...}
//   GET /open        200 {"ok":true} (bare route of the same server, for a ratio)
//
// Prints exactly one line "listening <port>" on stdout once ready; every
// log line of better-auth goes to stderr.
import http from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { fromNodeHeaders, toNodeHandler } from "better-auth/node";

const PORT = Number.parseInt(process.env.PORT ?? "3999", 10);
const HOST = "127.0.0.1";
const BASE_URL = `http://${HOST}:${PORT}`;

const BENCH_USER = {
	email: "bench@example.com",
	password: "violet-Kettle-93-orbit",
	name: "bench",
};

// In-memory "database": one array per model, as memoryAdapter expects.
const db = { user: [], session: [], account: [], verification: [] };

const auth = betterAuth({
	baseURL: BASE_URL,
	// Fixed, high-entropy bench secret (>= 32 chars). Not a real secret.
	secret: "auth-bench-peer-9f3Kq2ZxV7mL0pR8sT4wY6bN1cH5jD",
	database: memoryAdapter(db),
	emailAndPassword: { enabled: true },
	// A benchmark measures throughput, not the limiter.
	rateLimit: { enabled: false },
	// baseURL's origin is trusted by default; listed explicitly for clarity.
	trustedOrigins: [BASE_URL],
	// Keep the origin/CSRF check ON whatever NODE_ENV/TEST say (better-auth
	// turns it off when NODE_ENV=test or TEST is set, unless set explicitly).
	advanced: { disableOriginCheck: false },
	// session.cookieCache is left at its default (disabled when a database is
	// configured): every get-session looks the session up in the adapter.
	telemetry: { enabled: false },
	logger: {
		log: (level, message, ...args) => console.error(`[better-auth ${level}]`, message, ...args),
	},
});

const authHandler = toNodeHandler(auth);

function sendJson(res, status, body) {
	const payload = JSON.stringify(body);
	res.writeHead(status, {
		"content-type": "application/json",
		"content-length": Buffer.byteLength(payload),
	});
	res.end(payload);
}

const server = http.createServer(async (req, res) => {
	try {
		const path = req.url.split("?", 1)[0];
		if (path === "/api/auth" || path.startsWith("/api/auth/")) {
			return await authHandler(req, res);
		}
		if (path === "/protected" && req.method === "GET") {
			const session = await auth.api.getSession({ headers: fromNodeHeaders(req.headers) });
			if (!session) return sendJson(res, 401, { error: "unauthorized" });
			return sendJson(res, 200, { user_id: session.user.id });
		}
		if (path === "/open" && req.method === "GET") {
			return sendJson(res, 200, { ok: true });
		}
		sendJson(res, 404, { error: "not found" });
	} catch (err) {
		console.error("request error:", err);
		if (!res.headersSent) sendJson(res, 500, { error: "internal" });
		else res.destroy();
	}
});

// Seed the bench user before accepting connections.
await auth.api.signUpEmail({ body: { ...BENCH_USER } });

server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;

server.listen(PORT, HOST, () => {
	process.stdout.write(`listening ${PORT}\n`);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
	process.on(sig, () => {
		server.close();
		server.closeAllConnections?.();
		process.exit(0);
	});
}
