/* Billing console: progressive enhancement only. Every action also works as a plain HTML form. */
(function () {
  "use strict";

  document.documentElement.classList.remove("no-js");
  document.documentElement.classList.add("js");

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // The account switcher submits as soon as another account is chosen.
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () {
      select.form.submit();
    });
  });

  // Close the member menu when clicking elsewhere or pressing Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.member-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.member-menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });

  // Messages shown after a form post (e.g. "Visa •••• 4242 is now Primary.") sit in a live region,
  // but text present when a page loads is not read out: put it back once the page is up, so screen
  // readers announce it, in the page's language, without the text ever leaving the screen.
  window.setTimeout(function () {
    document.querySelectorAll(".flash-stack[aria-live] .flash__text").forEach(function (text) {
      var copy = text.cloneNode(true);
      text.parentNode.replaceChild(copy, text);
    });
  }, 300);

  // Keyboard users keep their place: after Move up / Move down / Make primary … reloads the page,
  // focus returns to the same button of the same method (or the next one still enabled there).
  var FOCUS_KEY = "console:order-focus";
  document.querySelectorAll("#charge-order form, .onfile-list form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var button = event.submitter;
      var item = form.closest("[id^=method-]");
      if (!button || !button.value || !item) return;
      try {
        window.sessionStorage.setItem(FOCUS_KEY, JSON.stringify({ item: item.id, action: button.value }));
      } catch (e) { /* storage may be off; focus then starts at the top, as without JavaScript */ }
    });
  });
  function restoreFocus() {
    var saved;
    try {
      saved = JSON.parse(window.sessionStorage.getItem(FOCUS_KEY) || "null");
      window.sessionStorage.removeItem(FOCUS_KEY);
    } catch (e) { return; }
    var item = saved && document.getElementById(saved.item);
    if (!item) return;
    var buttons = Array.prototype.slice.call(item.querySelectorAll("button"));
    var same = buttons.filter(function (b) { return b.value === saved.action && !b.disabled; })[0];
    var target = same || buttons.filter(function (b) { return !b.disabled; })[0];
    // Never take the focus back from someone who has already moved on.
    var untouched = !document.activeElement || document.activeElement === document.body;
    if (target && untouched) target.focus();
  }
  // After the load, once the browser has scrolled to #method-…, which would otherwise take the focus.
  window.addEventListener("load", function () { window.setTimeout(restoreFocus, 0); });

  // The charge order: drag and drop (mouse and touch), saved at once.
  var list = document.getElementById("charge-order");
  var status = document.getElementById("order-status");
  if (!list || !list.dataset.reorderUrl || typeof window.Sortable === "undefined") return;

  function announce(text) {
    // Clear first so the same words are announced again.
    status.textContent = "";
    window.setTimeout(function () { status.textContent = text; }, 50);
  }

  function items() {
    return Array.prototype.slice.call(list.querySelectorAll(":scope > li[data-method-id]"));
  }

  function currentOrder() {
    return items().map(function (li) { return li.dataset.methodId; });
  }

  function relabel(ranks) {
    var all = items();
    all.forEach(function (li, index) {
      var label = li.querySelector("[data-rank-label]");
      if (ranks && ranks[index]) label.textContent = ranks[index];
      var up = li.querySelector("[data-order-action=up]");
      var down = li.querySelector("[data-order-action=down]");
      var primary = li.querySelector("[data-order-action=primary]");
      if (up) up.disabled = index === 0;
      if (down) down.disabled = index === all.length - 1;
      if (primary) primary.disabled = index === 0;
    });
  }

  function restore(order) {
    var byId = {};
    items().forEach(function (li) { byId[li.dataset.methodId] = li; });
    order.forEach(function (id) { list.appendChild(byId[id]); });
    relabel(null);
  }

  var before = currentOrder();
  var saving = false;

  window.Sortable.create(list, {
    handle: ".order-card",
    filter: "button, a, input, select, form",
    preventOnFilter: false,
    draggable: "li[data-method-id]",
    animation: 150,
    forceFallback: true,
    fallbackOnBody: true,
    fallbackTolerance: 4,
    delay: 150,
    delayOnTouchOnly: true,
    ghostClass: "order-card--ghost",
    chosenClass: "order-card--chosen",
    dragClass: "order-card--drag",
    onStart: function () { before = currentOrder(); },
    onEnd: function () {
      var after = currentOrder();
      if (after.join() === before.join() || saving) return;
      saving = true;
      list.setAttribute("aria-busy", "true");
      list.classList.add("is-saving");
      fetch(list.dataset.reorderUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          "Accept": "application/json",
          "X-CSRFToken": csrfToken(),
          "X-Requested-With": "fetch"
        },
        body: JSON.stringify({ order: after.map(Number) })
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          // Words come from the server, in the member's language (data-error-text is rendered translated).
          if (!response.ok) throw new Error((data.errors || []).join(" ") || list.dataset.errorText);
          return data;
        });
      }).then(function (data) {
        relabel(data.order.map(function (entry) { return entry.rank; }));
        before = after;
        announce(data.message);
        list.classList.add("is-saved");
        window.setTimeout(function () { list.classList.remove("is-saved"); }, 1200);
      }).catch(function (error) {
        restore(before);
        announce(error.message);
      }).then(function () {
        saving = false;
        list.removeAttribute("aria-busy");
        list.classList.remove("is-saving");
      });
    }
  });
})();
