# Puppet: pin a node's apt sources to the snapshot the production channel
# points at, read through hiera-consul (see hiera.yaml). A promotion or
# rollback in mirrord changes the key; the next puppet run follows it.
$mirrord_snapshot = hiera('production')
$mirrord_host     = hiera('mirrord_ServiceAddress')
$mirrord_port     = hiera('mirrord_ServicePort')
$mirrord_base     = "http://${mirrord_host}:${mirrord_port}/snapshots/${mirrord_snapshot}"

file { '/etc/apt/keyrings/mirrord.asc':
  source => "http://${mirrord_host}:${mirrord_port}/keys/mirrord.asc",
}

file { '/etc/apt/sources.list.d/mirrord-debian.sources':
  content => @("SOURCES"),
    # Managed by puppet: mirrord snapshot ${mirrord_snapshot}
    Types: deb
    URIs: ${mirrord_base}/apt/debian/
    Suites: bookworm
    Components: main
    Signed-By: /etc/apt/keyrings/mirrord.asc
    | SOURCES
  require => File['/etc/apt/keyrings/mirrord.asc'],
  notify  => Exec['apt-get update'],
}

exec { 'apt-get update':
  command     => '/usr/bin/apt-get update -qq',
  refreshonly => true,
}
