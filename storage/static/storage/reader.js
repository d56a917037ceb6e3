/* The pair reader's keys and the monospace switch of the pair texts' boxes.
   A static file, because the admin's Content-Security-Policy allows no inline script. */
"use strict";

(function () {
  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function toggleHelp(reader) {
    var help = document.getElementById("ff-shortcuts");
    var button = reader.querySelector(".ff-help-toggle");
    if (!help) return;
    help.hidden = !help.hidden;
    if (button) button.setAttribute("aria-expanded", String(!help.hidden));
  }

  function openEditor() {
    var editor = document.getElementById("ff-edit");
    if (!editor) return false;
    editor.open = true;
    var box = editor.querySelector("textarea");
    if (box) box.focus();
    return true;
  }

  function setUpReader(reader) {
    var button = reader.querySelector(".ff-help-toggle");
    if (button) button.addEventListener("click", function () { toggleHelp(reader); });
    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      if (typing(event.target)) {
        if (event.key === "Escape") event.target.blur();
        return;
      }
      var go = null;
      if (event.key === "j" || event.key === "ArrowRight") go = reader.dataset.next;
      else if (event.key === "k" || event.key === "ArrowLeft") go = reader.dataset.previous;
      else if (event.key === "e") {
        if (openEditor()) event.preventDefault();
        return;
      } else if (event.key === "?") {
        toggleHelp(reader);
        event.preventDefault();
        return;
      } else return;
      if (go) {
        event.preventDefault();
        window.location.href = go;
      }
    });
  }

  function addMonospaceSwitch(box) {
    var label = document.createElement("label");
    label.className = "ff-mono-switch";
    var check = document.createElement("input");
    check.type = "checkbox";
    check.checked = window.localStorage && localStorage.getItem("ff-mono") === "1";
    box.classList.toggle("ff-mono", check.checked);
    check.addEventListener("change", function () {
      document.querySelectorAll("textarea.ff-pair-text").forEach(function (each) {
        each.classList.toggle("ff-mono", check.checked);
      });
      document.querySelectorAll(".ff-mono-switch input").forEach(function (each) { each.checked = check.checked; });
      if (window.localStorage) localStorage.setItem("ff-mono", check.checked ? "1" : "0");
    });
    label.appendChild(check);
    label.appendChild(document.createTextNode(" monospace"));
    box.insertAdjacentElement("afterend", label);
  }

  function start() {
    var reader = document.querySelector(".ff-reader");
    if (reader) setUpReader(reader);
    document.querySelectorAll("textarea.ff-pair-text").forEach(addMonospaceSwitch);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
