/* Saving a card or SEPA account with Stripe.js (the Stripe gateway's add-method pages).
 *
 * The card number (in Stripe's Card Element) or the IBAN goes from this page straight to Stripe,
 * which confirms the page's SetupIntent. Only the SetupIntent's id is then posted to our server: the
 * form holds no field named for a number, and nothing else is submitted. */
(function () {
  "use strict";

  var form = document.getElementById("stripe-setup");
  if (!form) return;
  var errors = document.getElementById("stripe-error");

  function showError(message) {
    errors.textContent = "";
    var paragraph = document.createElement("p");
    paragraph.textContent = message || form.dataset.unavailable;
    errors.appendChild(paragraph);
    errors.hidden = false;
  }

  // Stripe.js did not load (blocked, or offline): say so; the button stays disabled.
  if (typeof window.Stripe !== "function") {
    showError("");
    return;
  }

  var kind = form.dataset.kind;
  var clientSecret = form.dataset.clientSecret;
  var button = form.querySelector("button[type=submit]");
  var stripe = window.Stripe(form.dataset.publishableKey, { locale: form.dataset.locale || "auto" });
  var card = null;

  if (kind === "card") {
    card = stripe.elements().create("card", { hidePostalCode: true });
    card.mount("#stripe-card");
  }
  button.disabled = false;

  function value(id) {
    return document.getElementById(id).value.trim();
  }

  function confirmSetup() {
    if (kind === "card") {
      return stripe.confirmCardSetup(clientSecret, { payment_method: { card: card } });
    }
    return stripe.confirmSepaDebitSetup(clientSecret, {
      payment_method: {
        sepa_debit: { iban: value("stripe-iban").replace(/\s+/g, "").toUpperCase() },
        billing_details: { name: value("stripe-holder"), email: value("stripe-email") },
      },
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    confirmSetup().then(
      function (result) {
        if (result.error || !result.setupIntent) {
          showError(result.error && result.error.message);
          button.disabled = false;
          form.removeAttribute("aria-busy");
          return;
        }
        form.elements.setup_intent.value = result.setupIntent.id;
        form.submit();
      },
      function () {
        showError("");
        button.disabled = false;
        form.removeAttribute("aria-busy");
      }
    );
  });
})();
