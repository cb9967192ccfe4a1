// Progressive enhancement only: every page reads and every action works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // A form sent once: disable its buttons so a double click does not send it twice.
  document.querySelectorAll("form[method=post]").forEach(function (form) {
    form.addEventListener("submit", function () {
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (button) {
          button.disabled = true;
          button.setAttribute("aria-disabled", "true");
        });
      }, 0);
    });
  });
  // Move focus to an error so keyboard and screen-reader users land on it.
  var alertBox = document.querySelector(".flash-error");
  if (alertBox) {
    alertBox.setAttribute("tabindex", "-1");
    alertBox.focus();
  }
});
