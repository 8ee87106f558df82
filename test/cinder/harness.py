#!/usr/bin/python3
"""
Runs OpenStack Cinder's real PosixBackupDriver (Debian's python3-cinder) without OpenStack, for the
interop tests: a SQLite database made by Cinder's own migrations, oslo.messaging's fake transport,
notifications off, the volume as an open file. One database per backup store (STORE.cinder.sqlite, beside it),
so backups made by one run are the parents of the next.

  harness.py backup  --store DIR --volume-file F --volume-id V --backup-id B [--parent P]
                     [--compression zlib|bz2|zstd|none] [--chunk-size N] [--block-size N]
                     [--name N] [--description D] [--created-at ISO]
      prints the backup's fields as JSON (id, container, service_metadata, ...)
  harness.py restore --store DIR --backup-id B --target F [--chunk-size N] [--block-size N]
      Cinder's restore() of B (and its chain) into F
  harness.py import-record --store DIR --backup-url URL
      what `cinder backup-import` does with an exported record: the backup is then in the database
  harness.py export-record --store DIR --backup-id B
      prints the backup_url `cinder backup-export` gives
Run it with /usr/bin/python3 (Debian's python, which has the cinder package).
"""
import argparse
import json
import os
import sys
import warnings

warnings.filterwarnings('ignore')


def configure(args):
    from oslo_config import cfg
    from oslo_log import log as logging
    conf = cfg.CONF
    # Cinder's modules register their options (and oslo.log's) on import: before the arguments are parsed.
    import cinder.common.config  # noqa: F401
    import cinder.backup.drivers.posix  # noqa: F401
    import cinder.backup.chunkeddriver  # noqa: F401
    from cinder import rpc
    from oslo_messaging import transport
    from oslo_messaging.notify import notifier
    conf.register_opts(transport._transport_opts)
    conf.register_opts(notifier._notifier_opts, group='oslo_messaging_notifications')
    conf([], project='cinder', default_config_files=[], default_config_dirs=[])
    logging.set_defaults(default_log_levels=['cinder=ERROR', 'oslo=ERROR', 'alembic=ERROR'])
    conf.set_override('debug', False)
    logging.setup(conf, 'cinder')
    os.makedirs(args.store, exist_ok=True)
    conf.set_override('connection', 'sqlite:///' + os.path.abspath(args.store).rstrip('/') + '.cinder.sqlite', group='database')
    conf.set_override('state_path', os.path.abspath(args.store))
    conf.set_override('backup_enable_progress_timer', False)
    conf.set_override('backup_posix_path', os.path.abspath(args.store))
    if getattr(args, 'compression', None):
        conf.set_override('backup_compression_algorithm', args.compression)
    if getattr(args, 'chunk_size', None):
        conf.set_override('backup_file_size', args.chunk_size)
    if getattr(args, 'block_size', None):
        conf.set_override('backup_sha_block_size_bytes', args.block_size)
    # oslo.messaging's in-memory transport, notifications to nowhere: no broker, no OpenStack.
    conf.set_override('transport_url', 'fake:/')
    conf.set_override('driver', ['noop'], group='oslo_messaging_notifications')
    rpc.init(conf)
    from cinder import objects
    objects.register_all()
    from cinder.db import migration
    migration.db_sync()
    from cinder import context
    return context.get_admin_context()


def ensure_volume(ctx, volume_id, size_gib):
    from cinder import db, exception
    try:
        db.volume_get(ctx, volume_id)
    except exception.VolumeNotFound:
        # Objects with a given id are made through the db API (objects' create() refuses a preset id).
        volume_type = db.volume_type_get_by_name(ctx, '__DEFAULT__')  # made by Cinder's migrations
        db.volume_create(ctx, dict(id=volume_id, volume_type_id=volume_type['id'], size=size_gib, status='backing-up', host='harness',
                                   availability_zone='nova', user_id='u', project_id='p', display_name='v'))


def backup_fields(backup):
    keys = ['id', 'volume_id', 'parent_id', 'container', 'service_metadata', 'display_name', 'display_description', 'size', 'status', 'object_count']
    out = {k: backup[k] for k in keys}
    out['created_at'] = str(backup['created_at'])
    return out


def cmd_backup(args):
    ctx = configure(args)
    from cinder import objects
    from cinder.backup.drivers.posix import PosixBackupDriver
    from oslo_utils import timeutils
    size_bytes = os.path.getsize(args.volume_file)
    size_gib = max(1, -(-size_bytes // (1024 ** 3)))
    ensure_volume(ctx, args.volume_id, size_gib)
    fields = dict(id=args.backup_id, volume_id=args.volume_id, status='creating', size=size_gib, host='harness',
                  user_id='u', project_id='p', display_name=args.name, display_description=args.description,
                  parent_id=args.parent, service='cinder.backup.drivers.posix.PosixBackupDriver', availability_zone='nova')
    if args.created_at:
        fields['created_at'] = timeutils.parse_isotime(args.created_at)
    from cinder import db
    db.backup_create(ctx, fields)
    backup = objects.Backup.get_by_id(ctx, args.backup_id)
    driver = PosixBackupDriver(ctx)
    with open(args.volume_file, 'rb') as volume_file:
        driver.backup(backup, volume_file)
    backup.refresh()
    backup.status = 'available'
    backup.save()
    print(json.dumps(backup_fields(backup)))


def cmd_restore(args):
    ctx = configure(args)
    from cinder import objects
    from cinder.backup.drivers.posix import PosixBackupDriver
    backup = objects.Backup.get_by_id(ctx, args.backup_id)
    backup.status = 'restoring'  # restore() cancels when the requested backup leaves this state
    backup.save()
    driver = PosixBackupDriver(ctx)
    mode = 'r+b' if os.path.exists(args.target) else 'wb'
    with open(args.target, mode) as volume_file:
        driver.restore(backup, backup.volume_id, volume_file)
    backup.status = 'available'
    backup.save()


def cmd_import_record(args):
    """The database side of cinder.backup.api.import_record + manager.import_record, without RPC."""
    ctx = configure(args)
    from cinder import objects
    from cinder.backup.drivers.posix import PosixBackupDriver
    record = objects.Backup.decode_record(args.backup_url)
    for key in ('id', 'size'):
        if key not in record:
            sys.exit('backup record is missing %s' % key)
    backup = objects.BackupImport(context=ctx, id=record['id'], user_id='u', project_id='p', status='creating',
                                  volume_id='0000-0000-0000-0000', deleted=False, metadata={})
    backup.create()
    options = dict(record)
    driver_options = options.pop('driver_info', {})
    PosixBackupDriver(ctx).import_record(backup, driver_options)
    missing = {'display_name', 'display_description', 'container', 'size', 'service_metadata', 'object_count', 'id'} - set(options)
    if missing:
        sys.exit('backup record is missing fields: %s' % ', '.join(sorted(missing)))
    options['service'] = 'cinder.backup.drivers.posix.PosixBackupDriver'
    options['availability_zone'] = 'nova'
    options['host'] = 'harness'
    for key in ('name', 'user_id', 'project_id', 'deleted_at', 'deleted', 'fail_reason', 'status'):
        options.pop(key, None)
    backup.update(options)
    backup.save()
    backup.update({'status': 'available'})
    backup.save()
    print(json.dumps(backup_fields(objects.Backup.get_by_id(ctx, record['id']))))


def cmd_export_record(args):
    ctx = configure(args)
    from cinder import objects
    from cinder.backup.drivers.posix import PosixBackupDriver
    backup = objects.Backup.get_by_id(ctx, args.backup_id)
    driver_info = PosixBackupDriver(ctx).export_record(backup)
    print(backup.encode_record(driver_info=driver_info))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest='command', required=True)
    b = sub.add_parser('backup')
    b.add_argument('--store', required=True)
    b.add_argument('--volume-file', required=True)
    b.add_argument('--volume-id', required=True)
    b.add_argument('--backup-id', required=True)
    b.add_argument('--parent')
    b.add_argument('--compression', default='zlib')
    b.add_argument('--chunk-size', type=int)
    b.add_argument('--block-size', type=int)
    b.add_argument('--name', default='')
    b.add_argument('--description', default='')
    b.add_argument('--created-at')
    r = sub.add_parser('restore')
    r.add_argument('--store', required=True)
    r.add_argument('--backup-id', required=True)
    r.add_argument('--target', required=True)
    r.add_argument('--chunk-size', type=int)
    r.add_argument('--block-size', type=int)
    i = sub.add_parser('import-record')
    i.add_argument('--store', required=True)
    i.add_argument('--backup-url', required=True)
    e = sub.add_parser('export-record')
    e.add_argument('--store', required=True)
    e.add_argument('--backup-id', required=True)
    args = parser.parse_args()
    {'backup': cmd_backup, 'restore': cmd_restore, 'import-record': cmd_import_record, 'export-record': cmd_export_record}[args.command](args)


if __name__ == '__main__':
    main()
