// Passkeys: log in without a password (a button, and the browser's autofill), answer a login's
// second step, confirm it is you, and add a passkey on the account page.
// Progressive enhancement: each passkey form is hidden until this script finds WebAuthn, and
// everything else works without it. A file of its own: the Content-Security-Policy allows no
// inline script. Each form names its options' address (data-options); the browser's answer
// goes back in the form's "credential" field, posted as any form is.
(function () {
  "use strict";

  var forms = document.querySelectorAll("form[data-passkey]");
  if (!forms.length || !window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  // base64url (RFC 4648, section 5) for browsers without WebAuthn's JSON helpers.
  function fromBase64url(text) {
    var plain = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    var bytes = new Uint8Array(plain.length);
    for (var i = 0; i < plain.length; i += 1) {
      bytes[i] = plain.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var plain = "";
    for (var i = 0; i < bytes.length; i += 1) {
      plain += String.fromCharCode(bytes[i]);
    }
    return btoa(plain).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: fromBase64url(item.id) });
    });
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: fromBase64url(json.challenge),
      allowCredentials: withIds(json.allowCredentials),
    });
  }

  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: fromBase64url(json.challenge),
      user: Object.assign({}, json.user, { id: fromBase64url(json.user.id) }),
      excludeCredentials: withIds(json.excludeCredentials),
    });
  }

  function asJSON(credential) {
    if (typeof credential.toJSON === "function") {
      return credential.toJSON();
    }
    var answer = credential.response;
    var response = { clientDataJSON: toBase64url(answer.clientDataJSON) };
    if (answer.attestationObject) {
      response.attestationObject = toBase64url(answer.attestationObject);
      response.transports = answer.getTransports ? answer.getTransports() : [];
    } else {
      response.authenticatorData = toBase64url(answer.authenticatorData);
      response.signature = toBase64url(answer.signature);
      response.userHandle = answer.userHandle ? toBase64url(answer.userHandle) : null;
    }
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: response,
    };
  }

  // Asks the server for a ceremony's options. A refusal says why ({"error"}), and where to
  // go first when it needs the password again ({"confirm"}) or a new login ({"restart"}).
  function fetchOptions(form) {
    return fetch(form.getAttribute("data-options"), {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (answer) {
      return answer.json().then(function (body) {
        if (answer.ok) {
          return body;
        }
        var next = body.confirm || body.restart;
        if (next) {
          window.location.assign(next);
        }
        throw new Error(body.error || "The server refused. Try again.");
      });
    });
  }

  function explain(error) {
    if (error.name === "NotAllowedError" || error.name === "AbortError") {
      return "No passkey was used. Try again when you are ready.";
    }
    if (error.name === "InvalidStateError") {
      return "This device holds a passkey for this account already.";
    }
    return error.message || "The passkey did not work. Try again.";
  }

  function say(form, message) {
    var place = form.querySelector("[data-passkey-error]");
    if (place) {
      place.textContent = message;
      place.hidden = !message;
    }
  }

  function send(form, credential) {
    form.elements.credential.value = JSON.stringify(asJSON(credential));
    form.submit();
  }

  // The autofill's pending request, ended when a button asks for a passkey instead.
  var autofill = null;

  function ask(form, mediation) {
    return fetchOptions(form).then(function (json) {
      if (form.getAttribute("data-passkey") === "register") {
        return navigator.credentials.create({ publicKey: creationOptions(json) });
      }
      var request = { publicKey: requestOptions(json) };
      if (mediation) {
        autofill = new AbortController();
        request.mediation = mediation;
        request.signal = autofill.signal;
      }
      return navigator.credentials.get(request);
    });
  }

  Array.prototype.forEach.call(forms, function (form) {
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (autofill) {
        autofill.abort();
        autofill = null;
      }
      say(form, "");
      ask(form, null).then(
        function (credential) {
          send(form, credential);
        },
        function (error) {
          say(form, explain(error));
        }
      );
    });
    // The login form's name field offers the passkeys too (autocomplete="username webauthn"):
    // conditional mediation, which waits for the person to pick one there.
    if (
      form.getAttribute("data-passkey") === "login" &&
      PublicKeyCredential.isConditionalMediationAvailable
    ) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (!available) {
          return;
        }
        ask(form, "conditional").then(
          function (credential) {
            if (credential) {
              send(form, credential);
            }
          },
          function () {
            // Ended by the button, or nothing picked: the button is still there.
          }
        );
      });
    }
  });
})();
