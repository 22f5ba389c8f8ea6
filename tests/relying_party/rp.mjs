// A relying party on openid-client (certified by the OpenID Foundation), run by
// tests/test_oidc_relying_parties.py against a live `yupnope serve`.
//
// One step per run: the test reads a JSON instruction's answer from stdout and carries what
// the next step needs (PKCE verifier, state, nonce, tokens) itself, so nothing is kept here
// between runs. The person's part (log in, consent) is the test's, with its own cookies.
//
//   echo '{"step": "authorize", "issuer": ..., "client_id": ..., ...}' | node rp.mjs
//
// Steps: authorize, callback, refresh, logout. An answer the RP refuses is printed as
// {"refused": {...}} with exit status 0; anything else that fails exits non-zero.
import * as client from 'openid-client'

async function configure(ask) {
  const auth = ask.client_secret ? client.ClientSecretBasic(ask.client_secret) : client.None()
  const options = {
    // allowInsecureRequests: the tests' live server listens on plain HTTP on 127.0.0.1.
    // enableNonRepudiationChecks: openid-client trusts the token endpoint's ID token without
    // its signature by default, TLS vouching for the issuer (OpenID Connect Core 3.1.3.7 item
    // 6); with it, the signature is verified against the JWKS, which a tampered token fails.
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
  }
  if (ask.tamper) {
    options[client.customFetch] = tamperingFetch(ask.tamper)
  }
  return client.discovery(new URL(ask.issuer), ask.client_id, undefined, auth, options)
}

// Change claims in the ID token of every token response, keeping the signature: what an
// attacker between the RP and the provider would do.
function tamperingFetch(claims) {
  return async (url, init) => {
    const response = await fetch(url, init)
    const type = response.headers.get('content-type') ?? ''
    if (!type.startsWith('application/json')) {
      return response
    }
    const body = await response.json()
    if (typeof body.id_token === 'string') {
      const [header, payload, signature] = body.id_token.split('.')
      const altered = { ...JSON.parse(Buffer.from(payload, 'base64url')), ...claims }
      const encoded = Buffer.from(JSON.stringify(altered)).toString('base64url')
      body.id_token = [header, encoded, signature].join('.')
    }
    return new Response(JSON.stringify(body), {
      status: response.status,
      headers: response.headers,
    })
  }
}

function kidOf(idToken) {
  return JSON.parse(Buffer.from(idToken.split('.')[0], 'base64url')).kid
}

function tokensOf(result) {
  return {
    access_token: result.access_token,
    refresh_token: result.refresh_token,
    id_token: result.id_token,
    scope: result.scope,
    claims: result.claims(),
    kid: kidOf(result.id_token),
  }
}

const steps = {
  async authorize(config, ask) {
    const codeVerifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: ask.redirect_uri,
      scope: ask.scope,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    return { url: url.href, code_verifier: codeVerifier, state, nonce }
  },

  // Redeem the code: openid-client checks state, PKCE, and the ID token (signature, iss,
  // aud, exp, iat, nonce), then asks userinfo for the same subject.
  async callback(config, ask) {
    const result = await client.authorizationCodeGrant(config, new URL(ask.callback_url), {
      pkceCodeVerifier: ask.code_verifier,
      expectedState: ask.state,
      expectedNonce: ask.nonce,
      idTokenExpected: true,
    })
    const tokens = tokensOf(result)
    const userinfo = await client.fetchUserInfo(config, result.access_token, tokens.claims.sub)
    return { ...tokens, userinfo }
  },

  async refresh(config, ask) {
    return tokensOf(await client.refreshTokenGrant(config, ask.refresh_token))
  },

  async logout(config, ask) {
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: ask.id_token,
      post_logout_redirect_uri: ask.post_logout_redirect_uri,
      state: ask.state,
    })
    return { url: url.href }
  },
}

// What openid-client throws when it refuses an answer, rather than failing itself.
const REFUSALS = [
  client.ClientError,
  client.ResponseBodyError,
  client.AuthorizationResponseError,
  client.WWWAuthenticateChallengeError,
]

function refusal(error) {
  // openid-client's errors carry a code (oauth4webapi's OAUTH_*) and, for an error answer
  // from the server, its OAuth error.
  return {
    refused: {
      name: error.name,
      code: error.code ?? null,
      error: error.error ?? null,
      message: error.message,
      cause: error.cause?.message ?? null,
    },
  }
}

async function main() {
  const chunks = []
  for await (const chunk of process.stdin) {
    chunks.push(chunk)
  }
  const ask = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  const step = steps[ask.step]
  if (!step) {
    throw new Error(`unknown step ${JSON.stringify(ask.step)}`)
  }
  const config = await configure(ask)
  let answer
  try {
    answer = await step(config, ask)
  } catch (error) {
    if (!REFUSALS.some((kind) => error instanceof kind)) {
      throw error
    }
    answer = refusal(error)
  }
  process.stdout.write(JSON.stringify(answer) + '\n')
}

await main()
