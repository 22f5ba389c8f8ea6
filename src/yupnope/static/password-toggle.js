// Add a "Show" button beside every password field, so a person can check what they typed.
// Progressive enhancement: without JavaScript there is no button and the forms work as they are.
// A file of its own because the Content-Security-Policy allows no inline script.
(function () {
  "use strict";

  function enhance(input) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "password-toggle";
    button.textContent = "Show";
    // The name says which field ("Show current password"), the visible "Show" starts it
    // (WCAG 2.5.3), and it stays the same while aria-pressed says whether it is on
    // (WAI-ARIA Authoring Practices, Button pattern).
    var label = input.labels && input.labels.length ? input.labels[0].textContent.trim() : "";
    button.setAttribute("aria-label", "Show " + (label ? label.toLowerCase() : "password"));
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-controls", input.id);

    function show(visible) {
      input.type = visible ? "text" : "password";
      button.setAttribute("aria-pressed", visible ? "true" : "false");
    }

    button.addEventListener("click", function () {
      show(input.type === "password");
    });
    // Hide again before sending: a password manager saves what it sees in a password field,
    // and the page that comes back from the browser's history should not show it.
    if (input.form) {
      input.form.addEventListener("submit", function () {
        show(false);
      });
    }
    window.addEventListener("pagehide", function () {
      show(false);
    });
    input.classList.add("has-toggle");
    input.insertAdjacentElement("afterend", button);
  }

  var inputs = document.querySelectorAll('input[type="password"]');
  for (var i = 0; i < inputs.length; i += 1) {
    if (inputs[i].id) {
      enhance(inputs[i]);
    }
  }
})();
