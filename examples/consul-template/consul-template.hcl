# consul-template -config /etc/consul-template.d/mirrord.hcl
# Re-renders the client config whenever a channel moves or a replica comes
# or goes, then refreshes the package index.
consul {
  address = "127.0.0.1:8500"
}

template {
  source      = "/etc/consul-template.d/mirrord.sources.ctmpl"
  destination = "/etc/apt/sources.list.d/mirrord-debian.sources"
  command     = "apt-get update -qq"
}

template {
  source      = "/etc/consul-template.d/mirrord.repo.ctmpl"
  destination = "/etc/yum.repos.d/mirrord-baseos.repo"
  command     = "dnf makecache -q"
}
