/**
 * The editor side of the five operation nodes (backup-create, backup-incremental, snapshot-backup,
 * restore, prune), shared: each node's .html loads this file (Node-RED serves a package's resources/ at
 * resources/<module>/) and describes its form as a list of rows. From that list come the node's
 * `defaults` (with validators), its edit template, the typedInputs and which rows are shown.
 *
 * The validators apply the runtime's rules, in words (test/editor-rules.test.ts checks that they accept
 * and refuse what the runtime does). A property missing from a flow saved by an earlier version is
 * "not set", never invalid: the runtime gives it its default too.
 */
(function (root) {
    'use strict';

    // ---- the runtime's rules ----------------------------------------------------------------------
    // lib/repository/names.ts
    var VOLUME_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
    var BACKUP_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    // lib/snapshot/lvm.ts
    var LVM_ABSOLUTE = /^[0-9]+(\.[0-9]+)?[bBsSkKmMgGtTpPeE]?$/;
    var LVM_RELATIVE = /^[0-9]+%(ORIGIN|VG|FREE|PVS)$/;
    // nodes/common/resolve.ts parseSeconds, wholeNumber; lib/snapshot/index.ts SnapshotProviderConfig
    var MAX_WAIT_SECONDS = 24 * 3600;
    var MAX_SNAPSHOT_TIMEOUT_SECONDS = 7 * 24 * 3600;
    // lib/repository/retention.ts RetentionPolicySchema
    var POLICY_COUNTS = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'];
    var POLICY_TEXTS = ['keepWithin', 'keepWithinHourly', 'keepWithinDaily', 'keepWithinWeekly', 'keepWithinMonthly', 'keepWithinYearly', 'keepFailedFor', 'timeZone'];

    function blank(v) {
        return v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
    }
    function text(v) {
        return typeof v === 'number' ? String(v) : v;
    }
    function secondsIn(v, max) {
        var s = text(v);
        return typeof s === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(s) && Number(s) <= max;
    }

    /** Each rule: true, or what is wrong in words. A blank value is "not set" and always passes. */
    var rules = {
        volumeId: function (v) {
            return VOLUME_ID.test(v) && v.indexOf('..') < 0 ? true : 'a volume id is 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit';
        },
        backupId: function (v) {
            return BACKUP_ID.test(v) ? true : 'a backup id is a UUID such as 0b5c7f1e-8a5e-4a57-9d43-2f8ad0c1e0a7';
        },
        backupName: function (v) {
            return v.length <= 1024 ? true : 'a backup name is at most 1024 characters';
        },
        description: function (v) {
            return v.length <= 4096 ? true : 'a description is at most 4096 characters';
        },
        lockWait: function (v) {
            return secondsIn(v, MAX_WAIT_SECONDS) ? true : 'a number of seconds from 0 to ' + MAX_WAIT_SECONDS + ' (0: fail at once when the volume is busy)';
        },
        queueSize: function (v) {
            var n = Number(v);
            return /^\s*\d+\s*$/.test(text(v)) && Number.isSafeInteger(n) ? true : 'a whole number ≥ 0 (0: no queue, a message while busy is refused)';
        },
        fullReadEvery: function (v) {
            return /^\s*\d+\s*$/.test(text(v)) && Number.isSafeInteger(Number(v)) ? true : 'a whole number of changed-extent incrementals ≥ 0 (0: never re-read everything; empty: 30)';
        },
        timeoutSeconds: function (v) {
            var n = Number(v);
            return n > 0 && n <= MAX_SNAPSHOT_TIMEOUT_SECONDS ? true : 'a number of seconds above 0, at most ' + MAX_SNAPSHOT_TIMEOUT_SECONDS + ' (a week); empty: the provider\'s default';
        },
        lvmSize: function (v) {
            return LVM_ABSOLUTE.test(v) || LVM_RELATIVE.test(v) ? true : 'a size such as 2G or 512M, or a percentage such as 10%ORIGIN';
        },
        command: function (v) {
            var argv;
            try {
                argv = JSON.parse(v);
            } catch (e) {
                argv = null;
            }
            var ok = Array.isArray(argv) && argv.length > 0 && argv.every(function (a) { return typeof a === 'string'; });
            return ok ? true : 'a JSON array of strings, e.g. ["/usr/local/bin/snap", "{volume}"]';
        },
        policy: function (v) {
            var policy;
            try {
                policy = typeof v === 'string' ? JSON.parse(v) : v;
            } catch (e) {
                return 'not JSON: give a policy such as {"keepDaily": 7, "keepWeekly": 4}';
            }
            if (!policy || typeof policy !== 'object' || Array.isArray(policy)) return 'a policy is an object such as {"keepDaily": 7, "keepWeekly": 4}';
            var keys = Object.keys(policy);
            for (var i = 0; i < keys.length; i++) {
                var key = keys[i];
                var value = policy[key];
                if (POLICY_COUNTS.indexOf(key) >= 0) {
                    var count = typeof value === 'string' && /^\s*\d{1,7}\s*$/.test(value) ? Number(value) : value;
                    if (value !== 'unlimited' && !(Number.isInteger(count) && count >= 0 && count <= 1000000)) {
                        return key + ' must be a whole number from 0 to 1000000, or "unlimited"';
                    }
                } else if (POLICY_TEXTS.indexOf(key) >= 0) {
                    if (typeof value !== 'string' || value.length > 64) return key + ' must be text such as "7d" (at most 64 characters)';
                } else {
                    return 'unknown rule "' + key + '": use ' + POLICY_COUNTS.concat(POLICY_TEXTS).join(', ');
                }
            }
            return true;
        }
    };

    // ---- rows -------------------------------------------------------------------------------------
    var TEXT_TYPES = ['msg', 'str', 'env', 'flow', 'global', 'jsonata'];
    var NUMBER_TYPES = ['num', 'msg', 'env', 'flow', 'global', 'jsonata'];
    /** Which typedInput types hold the value itself (the rule applies); the others are looked up at run time. */
    var FIXED = { str: true, num: true, json: true, bool: true };

    function escapeHtml(s) {
        return String(s).replace(/[&<>"']/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]; });
    }

    /** The type a typed property has now: the open dialog's, else the node's, else the row's default. */
    function currentType(node, row) {
        var field = typeof $ === 'function' ? $('#node-input-' + row.name + 'Type') : null;
        var type = field && field.length ? field.val() : node && node[row.name + 'Type'];
        return type || row.type;
    }

    // Two parameters: Node-RED (3.x and later) shows a returned text as the reason only for a validator
    // declared with (value, options); with one parameter any text would count as valid.
    function typedValidator(row) {
        return function (v, opt) { // eslint-disable-line no-unused-vars -- see above
            var type = currentType(this, row);
            // Blank: the runtime reads the message's property of the same name instead.
            if (blank(v)) return true;
            if (FIXED[type]) {
                if (type === 'json' && row.rule !== 'policy') {
                    try { JSON.parse(v); } catch (e) { return 'not JSON'; }
                }
                if (type === 'num' && !row.rule && isNaN(Number(v))) return 'not a number';
                return row.rule ? rules[row.rule](text(v)) : true;
            }
            if (type === 'msg' && typeof RED !== 'undefined' && RED.utils && RED.utils.validatePropertyExpression && !RED.utils.validatePropertyExpression(v)) {
                return 'not a message property such as payload.volume';
            }
            return true;
        };
    }

    function plainValidator(row) {
        return function (v, opt) { // eslint-disable-line no-unused-vars -- see typedValidator
            if (blank(v)) return true;
            return rules[row.rule](text(v));
        };
    }

    /** A typedInput row: the value and its type (`<name>Type`), e.g. a volume from msg, text, env… */
    function typed(name, options) {
        var o = options || {};
        return {
            kind: 'typed', name: name, icon: o.icon || 'tag', value: o.value === undefined ? '' : o.value, type: o.type || 'str',
            types: o.types || (o.type === 'num' ? NUMBER_TYPES : TEXT_TYPES), rule: o.rule, placeholder: !!o.placeholder, show: o.show
        };
    }
    /** A typedInput row with a fixed list of choices (type `<name>`, as in {mode: "incremental"}), plus msg etc. */
    function choice(name, options) {
        var row = typed(name, options);
        row.kind = 'choice';
        row.type = name;
        row.choices = options.choices;
        row.types = [{ value: name, label: name, options: options.choices }].concat(options.others || ['msg', 'flow', 'global', 'env']);
        return row;
    }
    function select(name, options) {
        return { kind: 'select', name: name, icon: options.icon || 'cog', value: options.value, options: options.options, show: options.show };
    }
    function checkbox(name, options) {
        return { kind: 'checkbox', name: name, value: !!options.value, show: options.show };
    }
    function input(name, options) {
        var o = options || {};
        return { kind: 'input', name: name, icon: o.icon || 'pencil', value: o.value === undefined ? '' : o.value, rule: o.rule, number: !!o.number,
            width: o.width, placeholder: o.placeholder, placeholderLabel: !!o.placeholderLabel, show: o.show };
    }
    function repository() {
        return { kind: 'repository', name: 'repository', icon: 'database' };
    }

    function defaultsOf(rows) {
        var d = { name: { value: '' } };
        rows.forEach(function (row) {
            switch (row.kind) {
                case 'repository':
                    d.repository = { value: '', type: 'volume-driver-config', required: true };
                    break;
                case 'typed':
                case 'choice':
                    d[row.name] = { value: row.value, validate: typedValidator(row) };
                    d[row.name + 'Type'] = { value: row.type };
                    break;
                case 'checkbox':
                    d[row.name] = { value: row.value };
                    break;
                case 'select':
                    d[row.name] = { value: row.value };
                    break;
                case 'input':
                    d[row.name] = row.rule ? { value: row.value, validate: plainValidator(row) } : { value: row.value };
                    break;
            }
        });
        d.queueSize = { value: 10, validate: plainValidator({ rule: 'queueSize' }) };
        return d;
    }

    function labelHtml(prefix, row) {
        return '<label for="node-input-' + row.name + '"><i class="fa fa-' + row.icon + '"></i> <span data-i18n="' + prefix + '.label.' + row.name + '"></span></label>';
    }
    function rowHtml(prefix, row) {
        var id = 'node-input-' + row.name;
        var cls = 'form-row volume-backup-row-' + row.name;
        var placeholder = row.placeholder === true ? ' data-i18n="[placeholder]' + prefix + '.placeholder.' + row.name + '"'
            : row.placeholderLabel ? ' data-i18n="[placeholder]' + prefix + '.label.' + row.name + '"'
                : row.placeholder ? ' placeholder="' + escapeHtml(row.placeholder) + '"' : '';
        switch (row.kind) {
            case 'repository':
                return '<div class="' + cls + '">' + labelHtml(prefix, row) + '<input type="text" id="' + id + '"></div>';
            case 'typed':
            case 'choice':
                return '<div class="' + cls + '">' + labelHtml(prefix, row) + '<input type="text" id="' + id + '" style="width: 70%"' + placeholder + '>' +
                    '<input type="hidden" id="' + id + 'Type"></div>';
            case 'select':
                return '<div class="' + cls + '">' + labelHtml(prefix, row) + '<select id="' + id + '" style="width: 70%">' +
                    row.options.map(function (o) {
                        return '<option value="' + escapeHtml(o.value) + '"' + (o.i18n ? ' data-i18n="' + prefix + '.' + row.name + '.' + o.value + '"' : '') + '>' + escapeHtml(o.label || '') + '</option>';
                    }).join('') + '</select></div>';
            case 'checkbox':
                return '<div class="' + cls + '"><label for="' + id + '">&nbsp;</label>' +
                    '<input type="checkbox" id="' + id + '" style="display: inline-block; width: auto; vertical-align: top;">' +
                    '<label for="' + id + '" style="width: auto" data-i18n="' + prefix + '.label.' + row.name + '"></label></div>';
            case 'input':
                return '<div class="' + cls + '">' + labelHtml(prefix, row) + '<input type="' + (row.number ? 'number' : 'text') + '" id="' + id + '"' +
                    (row.width ? ' style="width: ' + row.width + '"' : '') + (row.number ? ' min="0"' : '') + placeholder + '></div>';
        }
        return '';
    }

    /** The rows every backup node has: volume id, backup name, description, wait if busy. */
    function backupRows() {
        return [
            typed('volumeId', { icon: 'tag', rule: 'volumeId', placeholder: true }),
            typed('backupName', { icon: 'bookmark', rule: 'backupName', placeholder: true }),
            typed('description', { icon: 'align-left', rule: 'description', placeholder: true }),
            typed('lockWait', { icon: 'hourglass-half', type: 'num', rule: 'lockWait', placeholder: true })
        ];
    }

    /** Mode, parent and "full when there is no parent" of the incremental and snapshot backups. */
    function parentRows(modes) {
        return [
            choice('mode', { icon: 'random', value: 'incremental', choices: modes }),
            typed('parentId', { icon: 'level-up', rule: 'backupId', placeholder: true }),
            checkbox('fullIfNoParent', { value: true })
        ];
    }

    /** The rows every operation node ends with: queue size and name. */
    function tailRows() {
        return [input('queueSize', { icon: 'list', number: true, width: '80px' }), input('name', { icon: 'tag', placeholderLabel: true })];
    }

    /**
     * Register an operation node: `def` is what RED.nodes.registerType takes, without defaults and the
     * edit template; `rows` the form. `prefix` is the node's locale namespace ("backup-create").
     */
    function register(type, prefix, rows, def) {
        var all = rows.concat(tailRows());
        var template = all.map(function (row) { return rowHtml(prefix, row); }).join('\n');
        var script = document.createElement('script');
        script.type = 'text/html';
        script.setAttribute('data-template-name', type);
        script.text = template;
        document.body.appendChild(script);

        var defaults = defaultsOf(rows);
        var own = def.oneditprepare;
        def.defaults = defaults;
        // What every operation node is: in "backup", one input, the result and the progress output.
        def.category = 'backup';
        def.color = '#a6c9d8';
        def.paletteLabel = prefix;
        def.inputs = 1;
        def.outputs = 2;
        def.labelStyle = function () { return this.name ? 'node_label_italic' : ''; };
        def.oneditprepare = function () {
            var node = this;
            all.forEach(function (row) {
                if (row.kind === 'typed' || row.kind === 'choice') {
                    var field = $('#node-input-' + row.name + 'Type');
                    // A flow saved before this property existed: its default, not an empty type.
                    if (!field.val()) field.val(row.type);
                    var el = $('#node-input-' + row.name);
                    if (node[row.name] === undefined) el.val(row.value);
                    el.typedInput({ default: row.type, types: row.types, typeField: '#node-input-' + row.name + 'Type' });
                } else if (row.kind === 'checkbox' && node[row.name] === undefined) {
                    $('#node-input-' + row.name).prop('checked', row.value);
                } else if (row.kind === 'select' && !$('#node-input-' + row.name).val()) {
                    $('#node-input-' + row.name).val(row.value);
                }
            });
            if (node.queueSize === undefined) $('#node-input-queueSize').val(10);
            var form = {
                /** A typed or choice row's value, when its type is the fixed choice or text; else null ("from the message"). */
                choice: function (name) {
                    var el = $('#node-input-' + name);
                    var t = el.typedInput('type');
                    return t === name || t === 'str' ? el.typedInput('value') : null;
                },
                value: function (name) {
                    return $('#node-input-' + name).val();
                },
                checked: function (name) {
                    return $('#node-input-' + name).prop('checked');
                }
            };
            var refresh = function () {
                all.forEach(function (row) {
                    if (row.show) $('.volume-backup-row-' + row.name).toggle(!!row.show(form));
                });
            };
            all.forEach(function (row) {
                $('#node-input-' + row.name).on('change', refresh);
            });
            refresh();
            if (own) own.call(node, form);
        };
        RED.nodes.registerType(type, def);
    }

    var api = {
        rules: rules, blank: blank, typed: typed, choice: choice, select: select, checkbox: checkbox, input: input,
        repository: repository, backupRows: backupRows, parentRows: parentRows, register: register, defaultsOf: defaultsOf, rowHtml: rowHtml,
        TEXT_TYPES: TEXT_TYPES, NUMBER_TYPES: NUMBER_TYPES
    };
    if (typeof module === 'object' && module.exports) module.exports = api;
    else root.VolumeBackupEditor = root.VolumeBackupEditor || api;
})(this);
