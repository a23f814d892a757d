<?php
/* ACME's WordPress front page, shipped on the httpd-php middleware image. */
require __DIR__ . '/wp-config.php';
?>
<!doctype html>
<html>
  <head><title>ACME</title></head>
  <body>
    <h1>Hello from ACME</h1>
    <p>Built by development on httpd-php (middleware) on corebuild (operations).</p>
  </body>
</html>
