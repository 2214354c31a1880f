// `accrue connect xero|netsuite` (issue #15): authorizes a connection and stores its secrets sealed with the operator's
// key (ACCRUE_SECRET_KEY or ACCRUE_SECRET_KEY_FILE). Never prints a secret.
import { auditActor } from '../domain/controls.js';
import { commandActor } from './auth.js';
import { transaction } from '../store/store.js';
import { createServer } from 'node:http';
import type { Command } from 'commander';
import type { ConnectionSettings } from '../domain/erp.js';
import { saveConnections } from '../connectors/connections.js';
import { saveCredentials, type Secrets } from '../connectors/auth/credentials.js';
import { markReauthorized } from '../connectors/auth/reauthorization.js';
import { loadSecretKey, type SecretKey } from '../connectors/auth/secret-box.js';
import { netsuiteClientCredentialsToken, netsuiteTokenUrl } from '../connectors/auth/netsuite-client-credentials.js';
import { xeroAuthorizeUrl, xeroExchangeCode, xeroPkce, xeroTenants, XERO_SCOPES } from '../connectors/auth/xero.js';
import { ProblemError } from '../domain/result.js';
import type { Config } from './config.js';
import { EXIT, output, readText, withStore } from './context.js';
import type { Store } from '../store/store.js';

const need = (name: string): string => {
  const value = process.env[name];
  if (!value)
    throw new ProblemError([
      {
        path: name,
        code: 'missing_env',
        message: `set ${name} in the environment (it is never read from a flag, so it stays out of shell history)`,
      },
    ]);
  return value;
};

function settingsOf(cfg: Config, name: string, kind: ConnectionSettings['kind']): ConnectionSettings {
  const settings = cfg.erpConnections.find((c) => c.name === name);
  if (!settings)
    throw new ProblemError([{ path: '--connection', code: 'unknown_connection', message: `no connection ${name} in erp.connections` }]);
  if (settings.kind !== kind)
    throw new ProblemError([{ path: '--connection', code: 'wrong_kind', message: `connection ${name} is a ${settings.kind} connection` }]);
  return settings;
}

async function store(
  storeHandle: Store,
  cfg: Config,
  settings: ConnectionSettings,
  secrets: Secrets,
  expiresAt: Date | null,
  key: SecretKey,
  by: string,
): Promise<void> {
  const saved = await saveConnections(storeHandle.pool, cfg.erpConnections, 'system:config');
  if (!saved.ok) throw new ProblemError(saved.problems);
  await transaction(storeHandle.pool, async (client) => {
    await saveCredentials(client, settings.name, secrets, expiresAt, key);
    await markReauthorized(client, settings.name, by);
  });
}

/** The code from a pasted code or redirect URL (checking state), or from the callback on 127.0.0.1:<port>. */
async function receiveCode(port: number, state: string, pasted: string | undefined): Promise<string> {
  const fromUrl = (url: URL): string => {
    if (url.searchParams.get('error')) throw new Error(`Xero refused the authorization: ${url.searchParams.get('error')}`);
    if (url.searchParams.get('state') !== state) throw new Error('the callback state does not match: start accrue connect again');
    const code = url.searchParams.get('code');
    if (!code) throw new Error('the callback has no code');
    return code;
  };
  if (pasted) return /^https?:/.test(pasted) ? fromUrl(new URL(pasted)) : pasted;
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
      if (url.pathname !== '/callback') return void res.writeHead(404).end();
      try {
        const code = fromUrl(url);
        res.writeHead(200, { 'content-type': 'text/plain' }).end('Accrue is connected to Xero; you may close this window.\n');
        server.close();
        resolve(code);
      } catch (error) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`);
        server.close();
        reject(error);
      }
    });
    server.on('error', reject);
    server.listen(port, '127.0.0.1');
  });
}

export function registerConnectCommands(program: Command): void {
  const connect = program
    .command('connect')
    .description('authorize an ERP connection and store its secrets sealed (ACCRUE_SECRET_KEY); docs/decisions/0003-erp-authentication.md');
  registerConnectXero(connect);
  registerConnectNetsuite(connect);
}

function registerConnectXero(connect: Command): void {
  connect
    .command('xero')
    .description(
      'OAuth 2.0 with PKCE: prints the authorize URL, receives the callback on 127.0.0.1:<port>/callback or takes --code; XERO_CLIENT_ID (XERO_CLIENT_SECRET for a web app, XERO_SCOPES to override the scopes)',
    )
    .requiredOption('--connection <name>', 'the connection in erp.connections')
    .option('--port <port>', 'local callback port (the redirect URI registered in the Xero app: http://127.0.0.1:<port>/callback)', '8765')
    .option('--code <code>', 'the code, or the whole redirect URL, pasted instead of waiting for the callback')
    .option('--tenant <id>', 'the organisation (tenant id) when the grant covers several')
    .action(async (flags: { connection: string; port: string; code?: string; tenant?: string }) => {
      const key = loadSecretKey();
      const clientId = need('XERO_CLIENT_ID');
      const clientSecret = process.env.XERO_CLIENT_SECRET || undefined;
      await withStore(async (storeHandle, cfg) => {
        const by = auditActor(await commandActor(storeHandle.pool, 'erp.connect'));
        const settings = settingsOf(cfg, flags.connection, 'xero');
        const pkce = await xeroPkce();
        const redirectUri = `http://127.0.0.1:${Number(flags.port)}/callback`;
        const url = xeroAuthorizeUrl(settings, { clientId, redirectUri, pkce, scopes: process.env.XERO_SCOPES || XERO_SCOPES });
        process.stderr.write(
          `Open this URL, sign in to Xero and allow access:\n\n  ${url}\n\n${flags.code ? '' : `Waiting for the callback on ${redirectUri} ...\n`}`,
        );
        const code = await receiveCode(Number(flags.port), pkce.state, flags.code);
        const tokens = await xeroExchangeCode(settings, { clientId, clientSecret, code, redirectUri, verifier: pkce.verifier });
        const tenants = await xeroTenants(settings, tokens.access_token);
        const wanted = flags.tenant ?? settings.tenant_id;
        const tenant = wanted ? tenants.find((t) => t.tenantId === wanted) : tenants.length === 1 ? tenants[0] : undefined;
        if (!tenant) {
          output(
            `${wanted ? `tenant ${wanted} is not among the organisations this grant covers` : 'the grant covers several organisations'}; run again with --tenant:\n${tenants.map((t) => `  ${t.tenantId}  ${t.tenantName}`).join('\n')}`,
            { tenants },
          );
          process.exitCode = EXIT.badInput;
          return;
        }
        const secrets: Secrets = {
          access_token: tokens.access_token,
          refresh_token: tokens.refresh_token,
          tenant_id: tenant.tenantId,
          client_id: clientId,
          ...(clientSecret ? { client_secret: clientSecret } : {}),
        };
        await store(storeHandle, cfg, settings, secrets, new Date(Date.now() + tokens.expires_in * 1000), key, by);
        output(`connection ${settings.name} authorized for ${tenant.tenantName} (${tenant.tenantId}); secrets sealed with key ${key.id}`, {
          connection: settings.name,
          tenant_id: tenant.tenantId,
          key_id: key.id,
        });
      });
    });
}

function registerConnectNetsuite(connect: Command): void {
  connect
    .command('netsuite')
    .description(
      'TBA: NETSUITE_CONSUMER_KEY, NETSUITE_CONSUMER_SECRET, NETSUITE_TOKEN_ID, NETSUITE_TOKEN_SECRET; client credentials (auth: client_credentials): NETSUITE_CLIENT_ID, NETSUITE_CERTIFICATE_ID and --private-key',
    )
    .requiredOption('--connection <name>', 'the connection in erp.connections')
    .option('--private-key <file>', 'client credentials: the certificate private key (PKCS#8 PEM)')
    .action(async (flags: { connection: string; privateKey?: string }) => {
      const key = loadSecretKey();
      await withStore(async (storeHandle, cfg) => {
        const by = auditActor(await commandActor(storeHandle.pool, 'erp.connect'));
        const settings = settingsOf(cfg, flags.connection, 'netsuite');
        if (settings.auth === 'client_credentials') {
          if (!flags.privateKey)
            throw new ProblemError([
              { path: '--private-key', code: 'required', message: 'client credentials need --private-key FILE (PEM)' },
            ]);
          const secrets: Secrets = {
            client_id: need('NETSUITE_CLIENT_ID'),
            certificate_id: need('NETSUITE_CERTIFICATE_ID'),
            private_key: readText(flags.privateKey),
          };
          const answer = await netsuiteClientCredentialsToken(netsuiteTokenUrl(settings), {
            clientId: secrets.client_id!,
            certificateId: secrets.certificate_id!,
            privateKeyPem: secrets.private_key!,
          });
          if ('refused' in answer)
            throw new ProblemError([
              {
                path: flags.connection,
                code: 'refused',
                message: `NetSuite refused the client-credentials exchange: ${answer.refused} (check the integration record, the certificate mapping and its role)`,
              },
            ]);
          await store(
            storeHandle,
            cfg,
            settings,
            { ...secrets, access_token: answer.access_token },
            new Date(Date.now() + answer.expires_in * 1000),
            key,
            by,
          );
        } else {
          const secrets: Secrets = {
            consumer_key: need('NETSUITE_CONSUMER_KEY'),
            consumer_secret: need('NETSUITE_CONSUMER_SECRET'),
            token_id: need('NETSUITE_TOKEN_ID'),
            token_secret: need('NETSUITE_TOKEN_SECRET'),
          };
          await store(storeHandle, cfg, settings, secrets, null, key, by);
        }
        output(`connection ${settings.name} authorized (${settings.auth ?? 'tba'}); secrets sealed with key ${key.id}`, {
          connection: settings.name,
          auth: settings.auth ?? 'tba',
          key_id: key.id,
        });
      });
    });
}
