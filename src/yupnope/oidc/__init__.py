"""Be an OpenID Connect provider: other apps sign their users in with yupnope.

authlib runs the protocol (OAuth 2.0, PKCE, OpenID Connect Core, revocation, introspection,
RP-initiated logout) and joserfc signs; these modules keep the keys (``keys``), the operator's
clients (``clients``), the codes and tokens (``tokens``), the claims (``claims``), and teach
authlib's grants where they live (``grants``, ``provider``). No Flask here: web/oidc*.py
speaks HTTP.
"""
