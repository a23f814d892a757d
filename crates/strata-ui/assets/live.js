// The timeline's live feed: new rows of the events log, appended at the top as they arrive.
// Built with textContent only: nothing received is ever parsed as HTML.
(function () {
  var live = document.getElementById("live");
  var list = document.getElementById("stories");
  if (!live || !list || live.dataset.live !== "true" || !window.EventSource) return;
  var q = "after=" + encodeURIComponent(live.dataset.after || "0");
  ["team", "image", "kind"].forEach(function (k) {
    if (live.dataset[k]) q += "&" + k + "=" + encodeURIComponent(live.dataset[k]);
  });
  var source = new EventSource("/ui/events?" + q);
  source.onopen = function () { live.dataset.state = "open"; };
  source.onerror = function () { live.dataset.state = "reconnecting"; };
  source.addEventListener("strata", function (message) {
    var e = JSON.parse(message.data);
    if (document.querySelector('.event[data-id="' + Number(e.id) + '"]')) return;
    var span = document.createElement("span");
    span.className = "event";
    span.dataset.id = String(e.id);
    span.dataset.kind = e.kind || "";
    span.dataset.result = e.result || "";
    var time = document.createElement("time");
    time.textContent = (e.time || "").slice(0, 19).replace("T", " ");
    span.appendChild(time);
    var words = [e.team || "?", e.kind || "event"];
    span.appendChild(document.createTextNode(" " + words.join(" ") + " "));
    var link = document.createElement("a");
    link.href = "/ui/image/" + encodeURIComponent(e.image);
    link.textContent = e.image;
    span.appendChild(link);
    var result = document.createElement("span");
    result.className = "result";
    result.textContent = " " + e.result;
    span.appendChild(result);
    if (e.reason) span.appendChild(document.createTextNode(" — " + e.reason.split("\n")[0]));
    // A run's events gather in one story, as on the server-rendered page.
    var line = document.createElement("li");
    line.appendChild(span);
    var story = null;
    if (e.runId) {
      story = document.querySelector('li.story.new[data-run="' + CSS.escape(e.runId) + '"]');
    }
    if (!story) {
      story = document.createElement("li");
      story.className = "story new";
      if (e.runId) story.dataset.run = e.runId;
      var details = document.createElement("details");
      details.open = true;
      var summary = document.createElement("summary");
      summary.textContent = (e.team || "?") + ": " + (e.kind || "event") + " " + e.image + " (live)";
      details.appendChild(summary);
      details.appendChild(document.createElement("ol"));
      story.appendChild(details);
      list.insertBefore(story, list.firstChild);
    }
    story.querySelector("ol").appendChild(line);
    live.dataset.after = String(e.id);
  });
})();
