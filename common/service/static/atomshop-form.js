/* atomshop: progressive enhancement of forms with repeated lines (the order form).
   Everything here also works without JavaScript through plain submit buttons handled by the server;
   this script only saves the round trip. Markup it looks for:
     [data-lines]            list of [data-line] rows; inputs named lines-N-<field>
     button[name=add_line]   adds a row          button[name=remove_line][value=N]  removes row N
     select option[data-price], input[name$=-quantity], [data-line-amount], [data-order-total]
     input[data-same-as-shipping] + [data-billing] fieldset with billing_<x> inputs mirrored from shipping_<x> */
(function () {
  "use strict";

  function cents(text) {
    var m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(String(text || "").trim());
    return m ? parseInt(m[1], 10) * 100 + parseInt(((m[2] || "") + "00").slice(0, 2), 10) : null;
  }

  function money(c) {
    var s = String(c % 100);
    return Math.floor(c / 100) + "." + (s.length < 2 ? "0" + s : s);
  }

  function renumber(list) {
    var rows = list.querySelectorAll("[data-line]");
    rows.forEach(function (row, i) {
      row.querySelectorAll("[name],[id],[for],[aria-describedby]").forEach(function (el) {
        ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
          var v = el.getAttribute(attr);
          if (v) el.setAttribute(attr, v.replace(/lines-\d+-/g, "lines-" + i + "-"));
        });
      });
      row.querySelectorAll("[data-line-number]").forEach(function (el) { el.textContent = String(i + 1); });
      var remove = row.querySelector("button[name=remove_line]");
      if (remove) {
        remove.value = String(i);
        remove.disabled = rows.length < 2;
        remove.setAttribute("aria-label", "Remove line " + (i + 1));
      }
    });
  }

  function clearErrors(row) {
    row.querySelectorAll(".errors").forEach(function (el) { el.remove(); });
    row.querySelectorAll(".field--error").forEach(function (el) { el.classList.remove("field--error"); });
    row.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    row.querySelectorAll("[aria-describedby]").forEach(function (el) {
      var ids = el.getAttribute("aria-describedby").split(/\s+/).filter(function (id) { return !/-errors$/.test(id); });
      if (ids.length) el.setAttribute("aria-describedby", ids.join(" ")); else el.removeAttribute("aria-describedby");
    });
  }

  function updateTotal(form) {
    var total = 0, complete = true;
    form.querySelectorAll("[data-line]").forEach(function (row) {
      var select = row.querySelector("select");
      var quantity = row.querySelector("input[name$='-quantity']");
      var option = select && select.selectedOptions[0];
      var price = option ? cents(option.getAttribute("data-price")) : null;
      var q = quantity && /^\d{1,4}$/.test(quantity.value.trim()) ? parseInt(quantity.value, 10) : null;
      var out = row.querySelector("[data-line-amount]");
      if (price === null || q === null || q < 1) {
        complete = false;
        if (out) out.textContent = "–";
      } else {
        total += price * q;
        if (out) out.textContent = money(price * q);
      }
    });
    // Like the server: no total until every line has an item and a valid quantity.
    form.querySelectorAll("[data-order-total]").forEach(function (el) {
      el.textContent = complete ? money(total) : "–";
    });
  }

  function setUpLines(form) {
    var list = form.querySelector("[data-lines]");
    if (!list) return;
    form.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button || !form.contains(button)) return;
      if (button.name === "add_line") {
        event.preventDefault();
        var rows = list.querySelectorAll("[data-line]");
        var row = rows[rows.length - 1].cloneNode(true);
        clearErrors(row);
        var select = row.querySelector("select");
        if (select) select.selectedIndex = 0;
        var quantity = row.querySelector("input[name$='-quantity']");
        if (quantity) quantity.value = "1";
        list.appendChild(row);
        renumber(list);
        updateTotal(form);
        if (select) select.focus();
      } else if (button.name === "remove_line") {
        event.preventDefault();
        var all = list.querySelectorAll("[data-line]");
        if (all.length < 2) return;
        var index = Array.prototype.indexOf.call(all, button.closest("[data-line]"));
        all[index].remove();
        renumber(list);
        updateTotal(form);
        var next = list.querySelectorAll("[data-line]")[Math.min(index, all.length - 2)];
        next.querySelector("select, input").focus();
      }
    });
    form.addEventListener("input", function () { updateTotal(form); });
    form.addEventListener("change", function () { updateTotal(form); });
    renumber(list);
    updateTotal(form);
  }

  function setUpSameAddress(form) {
    var box = form.querySelector("input[data-same-as-shipping]");
    var billing = form.querySelector("[data-billing]");
    if (!box || !billing) return;
    function copy() {
      if (!box.checked) return;
      billing.querySelectorAll("input[name^='billing_']").forEach(function (input) {
        var source = form.querySelector("[name='" + input.name.replace(/^billing_/, "shipping_") + "']");
        if (source) input.value = source.value;
      });
    }
    function show() {
      // Only hide when the billing part has no error to show.
      billing.hidden = box.checked && !billing.querySelector(".errors");
      if (box.checked) copy();
    }
    box.addEventListener("change", show);
    form.addEventListener("input", copy);
    form.addEventListener("submit", copy);
    show();
  }

  document.querySelectorAll("form[data-order-form]").forEach(function (form) {
    setUpLines(form);
    setUpSameAddress(form);
  });
  // A form shown again with errors: start at the summary, whose links lead to each field.
  var summary = document.querySelector(".error-summary");
  if (summary) summary.focus();
})();
