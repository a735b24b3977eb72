# nginx.sh - a private nginx on 127.0.0.1 for mount tests and the bench.
#
#	. tests/mount/nginx.sh
#	nginx_start DIR SECRET [PORT]   # serves DIR/www; sets NGINX_PORT, NGINX_URL
#	...
#	nginx_stop
#
# DIR holds its configuration, pid, logs and temporary files. Paths under
# /secret/ answer only requests with "Authorization: SECRET"; /flaky/
# answers 500 while DIR/www/flaky.500 exists; the access log
# (DIR/access.log) has one line per request: "STATUS BYTES_SENT URI". The
# server runs in the foreground of a background job, with one worker, so
# nginx_stop (and the caller's EXIT trap) can always stop it by pid.

NGINX_BIN=/usr/sbin/nginx
NGINX_PID=
NGINX_PORT=
NGINX_URL=

nginx_free_port()
{
	/usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

nginx_start()
{
	local dir=$1 secret=$2 tries=100
	mkdir -p "$dir/www" "$dir/tmp" || return 1
	NGINX_PORT=${3:-$(nginx_free_port)} || return 1
	cat >"$dir/nginx.conf" <<-EOF
	user root;
	daemon off;
	master_process off;
	worker_processes 1;
	pid $dir/nginx.pid;
	error_log $dir/error.log warn;
	events { worker_connections 256; }
	http {
	  log_format short '\$status \$bytes_sent \$uri';
	  access_log $dir/access.log short;
	  client_body_temp_path $dir/tmp/body;
	  proxy_temp_path $dir/tmp/proxy;
	  fastcgi_temp_path $dir/tmp/fastcgi;
	  uwsgi_temp_path $dir/tmp/uwsgi;
	  scgi_temp_path $dir/tmp/scgi;
	  default_type application/octet-stream;
	  keepalive_requests 100000;
	  sendfile on;
	  server {
	    listen 127.0.0.1:$NGINX_PORT;
	    root $dir/www;
	    location /secret/ {
	      if (\$http_authorization != "$secret") { return 401; }
	    }
	    location /flaky/ {
	      if (-f $dir/www/flaky.500) { return 500; }
	    }
	  }
	}
	EOF
	"$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
	NGINX_PID=$!
	NGINX_URL=http://127.0.0.1:$NGINX_PORT
	while ! (exec 9<>"/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null; do
		tries=$((tries - 1))
		if [ "$tries" -le 0 ] || ! kill -0 "$NGINX_PID" 2>/dev/null; then
			echo "nginx did not start: $(cat "$dir/error.log")" >&2
			nginx_stop
			return 1
		fi
		sleep 0.05
	done
}

nginx_stop()
{
	[ -n "$NGINX_PID" ] || return 0
	kill "$NGINX_PID" 2>/dev/null
	wait "$NGINX_PID" 2>/dev/null
	NGINX_PID=
}

# nginx_bytes DIR URI_REGEX: response bytes sent for matching requests.
nginx_bytes()
{
	awk -v re="$2" '$3 ~ re { n += $2 } END { printf "%.0f\n", n }' "$1/access.log"
}
