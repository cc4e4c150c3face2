// The authenticate page: confirms a charge the customer's bank asked them to confirm, with the
// processor's script (Stripe.js, from the address the page names), then posts the form so that the
// server reads the charge again from the gateway. The browser's word is never taken for the outcome.
(function () {
  "use strict";

  var form = document.getElementById("authenticate-form");
  if (!form) {
    return;
  }
  var button = document.getElementById("authenticate-button");
  var errorBox = document.getElementById("authenticate-error");
  var confirmed = false;

  function loadStripe(url) {
    return new Promise(function (resolve, reject) {
      if (window.Stripe) {
        resolve(window.Stripe);
        return;
      }
      var script = document.createElement("script");
      script.src = url;
      script.onload = function () { resolve(window.Stripe); };
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    button.disabled = false;
  }

  form.addEventListener("submit", function (event) {
    if (confirmed) {
      return; // the server reads the outcome again
    }
    event.preventDefault();
    button.disabled = true;
    loadStripe(form.dataset.stripeJs)
      .then(function (Stripe) {
        var stripe = Stripe(form.dataset.publishableKey);
        return stripe.confirmCardPayment(form.dataset.clientSecret, {
          payment_method: form.dataset.paymentMethod,
        });
      })
      .then(function (result) {
        if (result && result.error && result.error.message) {
          // Posted all the same: the server records what the bank decided.
          errorBox.textContent = result.error.message;
          errorBox.hidden = false;
        }
        confirmed = true;
        form.submit();
      })
      .catch(function () {
        showError(form.dataset.loadError);
      });
  });
})();
