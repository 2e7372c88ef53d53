import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { registryCommand } from "../../cli/registry.js";
import { describeWithEtcd } from "../support/etcd-gate.js";
import { etcdTestCerts, startSecureEtcd, type SecureEtcd } from "../support/etcd-secure.js";

const SERVICE = "demo.Accounts";

/** Runs `meridian registry <args>` in this process with `env`, capturing its output. */
async function registry(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await registryCommand(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env });
  return { code, stdout, stderr };
}

describeWithEtcd("etcd secure cli - meridian registry over etcds:// with roles", () => {
  let etcd: SecureEtcd;
  let dir: string;
  let url: string;
  const file = (name: string, pem: Buffer): string => {
    const path = join(dir, name);
    writeFileSync(path, pem, { mode: 0o600 });
    return path;
  };
  /** --ca/--cert/--key for a client certificate of the test CA. */
  const as = (who: "root" | "eu-1" | "ops"): string[] => ["--ca", join(dir, "ca.pem"), "--cert", join(dir, `${who}.pem`), "--key", join(dir, `${who}.key`)];

  beforeAll(async () => {
    const c = etcdTestCerts(["root", "eu-1", "ops"]);
    dir = mkdtempSync(join(tmpdir(), "meridian-etcd-cli-"));
    file("ca.pem", c.ca);
    for (const who of ["root", "eu-1", "ops"] as const) {
      file(`${who}.pem`, c.clients[who]!.cert);
      file(`${who}.key`, c.clients[who]!.key);
    }
    // No authentication yet: the command below sets up the roles and turns it on.
    etcd = await startSecureEtcd({ tls: { ca: c.ca, cert: c.serverCert, key: c.serverKey }, adminTls: { ca: c.ca, cert: c.clientCert, key: c.clientKey } });
    url = `etcds://127.0.0.1:${etcd.port}`;
  }, 60_000);
  afterAll(async () => {
    await etcd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("etcd secure cli - etcd-roles --enable-auth, then each identity can do what its role allows and no more", async () => {
    const setUp = await registry(
      ["etcd-roles", "--registry", url, ...as("root"), "--principal", `eu-1=instance:${SERVICE}`, "--principal", "ops=operator", "--enable-auth"],
      { MERIDIAN_ETCD_PASSWORD: "root-secret" },
    );
    expect(setUp.stderr).toBe("");
    expect(setUp.code).toBe(0);
    expect(setUp.stdout).toContain("users created: eu-1, ops");
    expect(setUp.stdout).toContain("authentication enabled");

    // The operator's certificate (CN=ops) is its etcd user: it moves the primary.
    const move = await registry(["primary", SERVICE, "--move-to", "eu-1", "--registry", url, ...as("ops")]);
    expect(move.stderr).toBe("");
    expect(move.code).toBe(0);
    expect(move.stdout).toContain(`moved ${SERVICE}: none -> eu-1 (epoch 1`);

    // An instance may read its service's primary but not move it.
    const read = await registry(["primary", SERVICE, "--registry", url, ...as("eu-1")]);
    expect(read.code).toBe(0);
    expect(read.stdout).toContain(`${SERVICE}: primary eu-1, epoch 1`);
    const evil = await registry(["primary", SERVICE, "--move-to", "evil-region", "--registry", url, ...as("eu-1")]);
    expect(evil.code).toBe(1);
    expect(evil.stderr).toMatch(/denied the write to "meridian\/services\/demo\.Accounts\/primary" to user "eu-1"/);

    // root by password (from the environment, never the command line); a wrong one is refused.
    const root = await registry(["primary", SERVICE, "--registry", url, ...as("eu-1"), "--user", "root"], { MERIDIAN_ETCD_PASSWORD: "root-secret" });
    expect(root.code).toBe(0);
    const wrong = await registry(["primary", SERVICE, "--registry", url, ...as("eu-1"), "--user", "root"], { MERIDIAN_ETCD_PASSWORD: "guess" });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('refused user "root": wrong password, or no such user');

    // Running the set-up again as root changes nothing.
    const again = await registry(["etcd-roles", "--registry", url, ...as("root"), "--principal", `eu-1=instance:${SERVICE}`, "--principal", "ops=operator"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("etcd already matches: nothing changed\n");
  });

  it("etcd secure cli - bad usage: a user without a password, a bad principal, etcd-roles on embedded://", async () => {
    const noPassword = await registry(["primary", SERVICE, "--registry", url, "--user", "root"]);
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain("--user root needs a password: set MERIDIAN_ETCD_PASSWORD or pass --password-file");
    const badPrincipal = await registry(["etcd-roles", "--registry", url, "--principal", "eu-1=admin"]);
    expect(badPrincipal.code).toBe(2);
    expect(badPrincipal.stderr).toContain('unknown role "admin"');
    const embedded = await registry(["etcd-roles", "--registry", "embedded://127.0.0.1:1", "--principal", "ops=operator"]);
    expect(embedded.code).toBe(2);
    expect(embedded.stderr).toContain("--registry must be etcd:// or etcds://");
  });
});
